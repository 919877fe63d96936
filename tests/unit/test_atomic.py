import os
import stat

from fingerspell.atomic import temp_beside


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
