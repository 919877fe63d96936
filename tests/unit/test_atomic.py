import json
import os
import stat

from fingerspell.atomic import temp_beside, write_json


def test_temp_file_gets_umask_mode_not_0600(tmp_path):
    umask = os.umask(0o022)
    try:
        tmp = temp_beside(tmp_path / "sub" / "report.json", suffix=".json")
    finally:
        os.umask(umask)
    assert tmp.parent == tmp_path / "sub"
    assert tmp.name.startswith(".report.json.")
    assert tmp.suffix == ".json"
    assert stat.S_IMODE(tmp.stat().st_mode) == 0o644, "mkstemp's 0600 must not reach outputs"


def test_json_reports_are_strict_json_with_null_for_nan(tmp_path):
    """Python writes NaN and Infinity, which JSON has not: browsers, jq and DVC's plots refuse the file."""
    path = write_json(
        tmp_path / "r.json", {"a": float("nan"), "b": [1.5, float("inf")], "c": {"d": -float("inf")}, "e": 2}
    )
    text = path.read_text()

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} written")

    assert json.loads(text, parse_constant=refuse) == {"a": None, "b": [1.5, None], "c": {"d": None}, "e": 2}
    assert text.endswith("}\n")
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"], "no temp file left beside it"
