"""Input expansion for `fingerspell-predict`: CSV rows, folders, stdin, per-input errors (no model needed)."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fingerspell.inference.sources import csv_items, expand

HEADER = "label," + ",".join(f"pixel{i}" for i in range(1, 785))


def row(label: int | None, value: int = 7) -> str:
    cells = [str(value)] * 784
    return ",".join(([str(label)] if label is not None else []) + cells)


def test_labelled_csv_rows_become_inputs_with_expected_letters() -> None:
    text = "\r\n".join([HEADER, row(0), row(10, 200), ""])
    items = list(csv_items(text, "s.csv"))
    assert [i.name for i in items] == ["s.csv:2", "s.csv:3"]
    assert [i.expected for i in items] == ["A", "K"]  # label 10 is K: J (9) has no image
    assert items[1].pixels is not None
    assert items[1].pixels.shape == (28, 28)
    assert float(items[1].pixels[0, 0]) == 200.0


def test_unlabelled_csv_is_accepted() -> None:
    text = "\n".join([HEADER.removeprefix("label,"), row(None)])
    (item,) = csv_items(text, "u.csv")
    assert item.error is None
    assert item.expected is None


def test_wrong_columns_is_one_error_for_the_file() -> None:
    items = list(csv_items("a,b,c\n1,2,3\n4,5,6\n", "w.csv"))
    assert len(items) == 1
    assert "expected Sign-MNIST columns" in (items[0].error or "")


def test_bad_rows_fail_alone() -> None:
    bad_value = row(3).replace("7", "x", 1)
    out_of_range = row(3, 300)
    short = ",".join(["1"] * 10)
    items = list(csv_items("\n".join([HEADER, row(3), bad_value, out_of_range, short]), "b.csv"))
    assert [i.error is None for i in items] == [True, False, False, False]
    assert "non-numeric" in (items[1].error or "")
    assert "0-255" in (items[2].error or "")
    assert "10 values" in (items[3].error or "")


def test_quoted_cells_as_pandas_quote_all_writes_them() -> None:
    import csv

    buf = io.StringIO()
    writer = csv.writer(buf, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(HEADER.split(","))
    writer.writerow(row(10, 200).split(","))
    (item,) = csv_items(buf.getvalue(), "q.csv")
    assert item.error is None, item.error
    assert item.name == "q.csv:2"
    assert item.expected == "K"
    assert item.pixels is not None
    assert float(item.pixels[0, 0]) == 200.0


def test_a_stray_quote_spoils_its_own_row_only() -> None:
    broken = row(2).replace("7", '"7', 1)  # an unclosed quote
    items = list(csv_items("\n".join([HEADER, row(0), broken, row(1), row(3)]), "q.csv"))
    assert [(i.name, i.error is None) for i in items] == [
        ("q.csv:2", True),
        ("q.csv:3", False),
        ("q.csv:4", True),
        ("q.csv:5", True),
    ]
    assert "unclosed quote" in (items[1].error or "")


def test_stdin_takes_a_quoted_header_csv() -> None:
    text = '"label",' + ",".join(f'"pixel{i}"' for i in range(1, 785)) + "\n" + row(0) + "\n"
    (item,) = expand(["-"], 10_000, stdin=io.BytesIO(text.encode()))
    assert item.error is None, item.error
    assert item.expected == "A"


def test_row_names_count_physical_lines_past_blank_ones() -> None:
    items = list(csv_items("\n".join([HEADER, "", row(0), "", row(1)]), "b.csv"))
    assert [i.name for i in items] == ["b.csv:3", "b.csv:5"]


def test_empty_and_header_only_csvs() -> None:
    assert "empty CSV" in (next(iter(csv_items("", "e.csv"))).error or "")
    assert "no rows" in (next(iter(csv_items(HEADER + "\n", "h.csv"))).error or "")


def test_folders_are_walked_recursively_in_order_skipping_hidden_and_other_files(tmp_path: Path) -> None:
    (tmp_path / "b" / "c").mkdir(parents=True)
    (tmp_path / ".hidden").mkdir()
    img = Image.fromarray(np.full((40, 30), 128, np.uint8))
    for name in ["b/c/z.png", "a.jpg", ".hidden/x.png", "b/.dot.png"]:
        img.save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an input")
    names = [Path(i.name).relative_to(tmp_path).as_posix() for i in expand([str(tmp_path)], 10_000_000)]
    assert names == ["a.jpg", "b/c/z.png"]


def test_missing_paths_and_empty_folders_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    items = list(expand([str(tmp_path / "nope.png"), str(tmp_path / "empty")], 10_000_000))
    assert "no such file or folder" in (items[0].error or "")
    assert "folder has no images" in (items[1].error or "")


@pytest.mark.parametrize(
    ("data", "expect"),
    [(b"label," + HEADER.removeprefix("label,").encode() + b"\n" + row(1).encode(), "B"), (None, None)],
)
def test_stdin_takes_a_csv_or_an_image(data: bytes | None, expect: str | None) -> None:
    if data is None:
        buf = io.BytesIO()
        Image.fromarray(np.zeros((50, 50), np.uint8)).save(buf, "PNG")
        data = buf.getvalue()
    (item,) = expand(["-"], 10_000_000, stdin=io.BytesIO(data))
    assert item.error is None
    assert item.expected == expect
    assert item.name.startswith("<stdin>")
