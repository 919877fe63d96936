"""Finding the two CSVs in a zip or folder, however a mirror packs them; clear errors otherwise."""

import zipfile
from pathlib import Path

import numpy as np
import pytest

from fingerspell.data.archive import read_split_csvs
from fingerspell.data.csv_parser import parse_csv
from fingerspell.data.errors import DataError
from tests.fixtures.data import TEST_CSV, TRAIN_CSV, gz, write_zip


def error_of(source: Path) -> str:
    with pytest.raises(DataError) as info:
        read_split_csvs(source)
    message = str(info.value)
    assert "\n" not in message
    assert str(source) in message, "the message names the file"
    return message


def test_upstream_layout_nested_folders(tiny_zip: Path, tiny_csvs: dict[str, bytes]) -> None:
    found = read_split_csvs(tiny_zip)
    assert set(found) == {"train", "test"}
    assert found["train"] == (f"{tiny_zip.name}:sign_mnist_train/{TRAIN_CSV}", tiny_csvs[TRAIN_CSV])
    assert found["test"] == (f"{tiny_zip.name}:sign_mnist_test/{TEST_CSV}", tiny_csvs[TEST_CSV])


def test_kaggle_layout_with_top_level_copies_too(tmp_path: Path, tiny_csvs: dict[str, bytes]) -> None:
    # the Kaggle download holds each CSV twice: at the top and in a folder of its name
    members = {
        "american_sign_language.PNG": b"png",
        TEST_CSV: tiny_csvs[TEST_CSV],
        f"sign_mnist_test/{TEST_CSV}": tiny_csvs[TEST_CSV],
        TRAIN_CSV: tiny_csvs[TRAIN_CSV],
        f"sign_mnist_train/{TRAIN_CSV}": tiny_csvs[TRAIN_CSV],
    }
    found = read_split_csvs(write_zip(tmp_path / "kaggle.zip", members))
    assert found["train"][1] == tiny_csvs[TRAIN_CSV]
    assert found["test"][1] == tiny_csvs[TEST_CSV]


def test_deeply_nested_and_stored(tmp_path: Path, tiny_csvs: dict[str, bytes]) -> None:
    members = {f"a/b/c/{TRAIN_CSV}": tiny_csvs[TRAIN_CSV], f"x/{TEST_CSV}": tiny_csvs[TEST_CSV]}
    found = read_split_csvs(write_zip(tmp_path / "deep.zip", members, zipfile.ZIP_STORED))
    assert found["train"][1] == tiny_csvs[TRAIN_CSV]
    assert found["train"][0].endswith(f"a/b/c/{TRAIN_CSV}")


def test_gzipped_csvs_inside_a_zip(tmp_path: Path, tiny_csvs: dict[str, bytes]) -> None:
    members = {f"{TRAIN_CSV}.gz": gz(tiny_csvs[TRAIN_CSV]), f"d/{TEST_CSV}.gz": gz(tiny_csvs[TEST_CSV])}
    found = read_split_csvs(write_zip(tmp_path / "gz.zip", members))
    assert found["train"][1] == tiny_csvs[TRAIN_CSV]
    assert found["test"][1] == tiny_csvs[TEST_CSV]


def test_folder_of_plain_csvs(tmp_path: Path, tiny_csvs: dict[str, bytes]) -> None:
    for name, data in tiny_csvs.items():
        (tmp_path / name).write_bytes(data)
    found = read_split_csvs(tmp_path)
    assert found["train"] == (str(tmp_path / TRAIN_CSV), tiny_csvs[TRAIN_CSV])
    assert found["test"] == (str(tmp_path / TEST_CSV), tiny_csvs[TEST_CSV])


def test_folder_of_nested_csv_gz(tmp_path: Path, tiny_csvs: dict[str, bytes]) -> None:
    (tmp_path / "sub" / "deeper").mkdir(parents=True)
    (tmp_path / "sub" / "deeper" / f"{TRAIN_CSV}.gz").write_bytes(gz(tiny_csvs[TRAIN_CSV]))
    (tmp_path / f"{TEST_CSV}.gz").write_bytes(gz(tiny_csvs[TEST_CSV]))
    found = read_split_csvs(tmp_path)
    assert found["train"][1] == tiny_csvs[TRAIN_CSV]
    assert found["test"][1] == tiny_csvs[TEST_CSV]
    assert found["train"][0].endswith(f"{TRAIN_CSV}.gz"), "errors must name the .gz file"


def test_packings_parse_to_identical_arrays(tmp_path: Path, tiny_csvs: dict[str, bytes]) -> None:
    crlf = {name: data.replace(b"\n", b"\r\n") for name, data in tiny_csvs.items()}
    sources = [
        write_zip(tmp_path / "lf.zip", tiny_csvs),
        write_zip(tmp_path / "crlf.zip", {f"n/{k}": v for k, v in crlf.items()}, zipfile.ZIP_STORED),
        write_zip(tmp_path / "gz.zip", {f"{k}.gz": gz(v) for k, v in crlf.items()}),
    ]
    parsed = [
        {split: parse_csv(data, name) for split, (name, data) in read_split_csvs(s).items()} for s in sources
    ]
    for other in parsed[1:]:
        for split in ("train", "test"):
            np.testing.assert_array_equal(other[split].images, parsed[0][split].images)
            np.testing.assert_array_equal(other[split].labels, parsed[0][split].labels)


def test_missing_source(tmp_path: Path) -> None:
    message = error_of(tmp_path / "nope.zip")
    assert "dvc repro" in message


@pytest.mark.parametrize("missing", [TRAIN_CSV, TEST_CSV])
def test_zip_without_one_csv(tmp_path: Path, tiny_csvs: dict[str, bytes], missing: str) -> None:
    members = {name: data for name, data in tiny_csvs.items() if name != missing}
    members["README.txt"] = b"hello"
    message = error_of(write_zip(tmp_path / "partial.zip", members))
    assert f"no {missing}" in message
    assert "mirror" in message


def test_csv_name_must_match_exactly(tmp_path: Path, tiny_csvs: dict[str, bytes]) -> None:
    members = {"old_sign_mnist_train.csv": tiny_csvs[TRAIN_CSV], TEST_CSV: tiny_csvs[TEST_CSV]}
    assert f"no {TRAIN_CSV}" in error_of(write_zip(tmp_path / "renamed.zip", members))


def test_folder_without_one_csv(tmp_path: Path, tiny_csvs: dict[str, bytes]) -> None:
    (tmp_path / TRAIN_CSV).write_bytes(tiny_csvs[TRAIN_CSV])
    assert f"no {TEST_CSV}" in error_of(tmp_path)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda raw: raw[: len(raw) // 2], id="truncated-half"),
        pytest.param(lambda raw: raw[:-30], id="truncated-tail"),
        pytest.param(lambda raw: b"", id="empty-file"),
        pytest.param(lambda raw: b"<html>Too many requests</html>", id="html-error-page"),
    ],
)
def test_truncated_or_not_a_zip(tiny_zip: Path, damage) -> None:
    tiny_zip.write_bytes(damage(tiny_zip.read_bytes()))
    message = error_of(tiny_zip)
    assert "zip" in message
    assert "re-download" in message


@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED])
def test_corrupt_member_data(tmp_path: Path, tiny_csvs: dict[str, bytes], compression: int) -> None:
    path = write_zip(tmp_path / "bad.zip", tiny_csvs, compression)
    raw = bytearray(path.read_bytes())
    for offset in range(200, 260):  # inside the first member's data, past its local header
        raw[offset] ^= 0x5A
    path.write_bytes(bytes(raw))
    message = error_of(path)
    assert "corrupt" in message or "not a readable zip" in message
    assert "re-download" in message


def test_corrupt_gzip_in_folder(tmp_path: Path, tiny_csvs: dict[str, bytes]) -> None:
    (tmp_path / f"{TRAIN_CSV}.gz").write_bytes(gz(tiny_csvs[TRAIN_CSV])[:-40])
    (tmp_path / TEST_CSV).write_bytes(tiny_csvs[TEST_CSV])
    with pytest.raises(DataError, match=rf"{TRAIN_CSV}\.gz: gzip data is truncated or corrupt"):
        read_split_csvs(tmp_path)


def test_corrupt_gzip_in_zip(tmp_path: Path, tiny_csvs: dict[str, bytes]) -> None:
    members = {f"{TRAIN_CSV}.gz": b"\x1f\x8b not gzip", TEST_CSV: tiny_csvs[TEST_CSV]}
    with pytest.raises(DataError, match=rf"bad\.zip:{TRAIN_CSV}\.gz: gzip data is truncated or corrupt"):
        read_split_csvs(write_zip(tmp_path / "bad.zip", members))
