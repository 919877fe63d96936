"""preprocess() on tiny crafted archives: what it writes, and that bad input writes nothing."""

import json
import os
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fingerspell.data import processed as processed_module
from fingerspell.data import validate
from fingerspell.data.errors import DataError
from fingerspell.data.labels import LABELS, LETTERS, labels_to_indices
from fingerspell.data.preprocess import preprocess
from fingerspell.data.processed import load_meta, load_split
from tests.fixtures.data import TEST_CSV, TRAIN_CSV, csv_bytes, csv_row, make_csv, write_zip


def run(source: Path, out: Path, **overrides) -> dict:
    kwargs = {"val_fraction": 0.2, "split_seed": 7, "custom": True} | overrides
    return preprocess(source, out, **kwargs)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.fixture
def old_output(tmp_path: Path) -> Path:
    """A previous `processed/` whose files must survive any failed run byte for byte."""
    out = tmp_path / "data" / "processed"
    out.mkdir(parents=True)
    (out / "meta.json").write_text('{"old": true}\n')
    (out / "train.npz").write_bytes(b"old train")
    return out


def test_writes_three_splits_and_meta(tiny_zip: Path, tiny_arrays, tmp_path: Path) -> None:
    out = tmp_path / "processed"
    meta = run(tiny_zip, out)
    assert sorted(p.name for p in out.iterdir()) == ["meta.json", "test.npz", "train.npz", "val.npz"]
    assert load_meta(out) == meta == json.loads((out / "meta.json").read_text())
    for split in ("train", "val", "test"):
        images, labels = load_split(out, split)
        assert images.dtype == np.uint8
        assert images.shape[1:] == (1, 28, 28)
        assert labels.dtype == np.int64
        assert labels.min() >= 0
        assert labels.max() <= 23
        assert meta["rows"][split] == len(labels)
    # 10 train rows per class, 20 % of each class to val; the test CSV is kept whole, in order
    assert meta["rows"] == {"train": 192, "val": 48, "test": 72}
    test_images, test_labels = load_split(out, "test")
    np.testing.assert_array_equal(test_images[:, 0], tiny_arrays["test"][1])
    np.testing.assert_array_equal(test_labels, labels_to_indices(tiny_arrays["test"][0]))


def test_train_and_val_are_a_partition_of_the_train_csv(tiny_zip: Path, tiny_arrays, tmp_path: Path) -> None:
    out = tmp_path / "processed"
    run(tiny_zip, out)
    csv_labels, csv_images = tiny_arrays["train"]
    by_image = {image.tobytes(): label for label, image in zip(csv_labels, csv_images, strict=True)}
    seen: set[bytes] = set()
    for split in ("train", "val"):
        images, labels = load_split(out, split)
        for image, index in zip(images[:, 0], labels, strict=True):
            key = image.tobytes()
            assert key in by_image, "every row comes from the train CSV"
            assert LABELS[index] == by_image[key], "label travels with its image"
            assert key not in seen
            seen.add(key)
    assert len(seen) == len(csv_labels)
    val_labels = load_split(out, "val")[1]
    assert np.bincount(val_labels, minlength=24).tolist() == [2] * 24


def test_meta_contents(tiny_zip: Path, tmp_path: Path) -> None:
    out = tmp_path / "processed"
    meta = run(tiny_zip, out, val_fraction=0.3, split_seed=11)
    assert meta["letters"] == list(LETTERS)
    assert meta["num_classes"] == 24
    assert meta["label_to_index"]["10"] == 9
    assert "9" not in meta["label_to_index"]
    assert meta["index_to_label"] == list(LABELS)
    assert meta["val_fraction"] == 0.3
    assert meta["split_seed"] == 11
    assert meta["dataset"] == "custom"
    assert meta["duplicates"] == {"train_duplicates": 0, "test_duplicates": 0, "train_test_overlap": 0}
    train_images = load_split(out, "train")[0].astype(np.float64) / 255
    assert meta["normalization"]["mean"] == pytest.approx(train_images.mean(), rel=1e-9)
    assert meta["normalization"]["std"] == pytest.approx(train_images.std(), rel=1e-9)
    assert meta["normalization"]["scale"] == 255
    for split in ("train", "val", "test"):
        labels = load_split(out, split)[1]
        expected = {LETTERS[i]: int(n) for i, n in enumerate(np.bincount(labels, minlength=24))}
        assert meta["counts"][split] == expected


def test_same_input_same_bytes(tiny_zip: Path, tmp_path: Path) -> None:
    run(tiny_zip, tmp_path / "a")
    run(tiny_zip, tmp_path / "b")
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b"), "DVC caches the output by hash"


def test_seed_changes_the_split_only(tiny_zip: Path, tmp_path: Path) -> None:
    a, b = run(tiny_zip, tmp_path / "a", split_seed=1), run(tiny_zip, tmp_path / "b", split_seed=2)
    assert a["fingerprint"] == b["fingerprint"]
    assert a["rows"] == b["rows"]
    assert not np.array_equal(load_split(tmp_path / "a", "val")[0], load_split(tmp_path / "b", "val")[0])


def test_fingerprint_matches_csv_packing(tmp_path: Path, tiny_csvs: dict[str, bytes]) -> None:
    crlf = {f"deep/{k}": v.replace(b"\n", b"\r\n") for k, v in tiny_csvs.items()}
    a = run(write_zip(tmp_path / "a.zip", tiny_csvs), tmp_path / "a")
    b = run(write_zip(tmp_path / "b.zip", crlf, zipfile.ZIP_STORED), tmp_path / "b")
    assert a["fingerprint"] == b["fingerprint"]


def test_replaces_old_output_whole(tiny_zip: Path, old_output: Path) -> None:
    run(tiny_zip, old_output)
    assert sorted(p.name for p in old_output.iterdir()) == ["meta.json", "test.npz", "train.npz", "val.npz"]
    assert "old" not in load_meta(old_output)
    assert [p.name for p in old_output.parent.iterdir()] == ["processed"], "no temp or backup folder left"


def test_output_folder_honours_the_umask(tiny_zip: Path, tmp_path: Path) -> None:
    out = tmp_path / "processed"
    run(tiny_zip, out)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o777 & ~umask, "mkdtemp's 0700 must not leak into data/"


def bad_zip(tmp_path: Path, tiny_csvs: dict[str, bytes], train: bytes | None = None) -> Path:
    return write_zip(
        tmp_path / "bad.zip",
        {TRAIN_CSV: tiny_csvs[TRAIN_CSV] if train is None else train} | {TEST_CSV: tiny_csvs[TEST_CSV]},
    )


def corrupt_rows(tiny_arrays, row: int, label: object, pixels: list[object]) -> bytes:
    labels, images = tiny_arrays["train"]
    lines = [csv_row(lab, img.ravel()) for lab, img in zip(labels, images, strict=True)]
    lines[row] = csv_row(label, pixels)
    return make_csv(lines)


BAD_INPUTS = {
    "label-9": (lambda a: corrupt_rows(a, 50, 9, [0] * 784), "line 52: label 9"),
    "label-25": (lambda a: corrupt_rows(a, 7, 25, [0] * 784), "line 9: label 25"),
    "pixel-256": (lambda a: corrupt_rows(a, 0, 3, [256] + [0] * 783), "line 2: pixel1=256"),
    "non-numeric": (lambda a: corrupt_rows(a, 239, 3, ["abc"] + [0] * 783), "line 241: cell 'abc'"),
    "wrong-columns": (lambda a: corrupt_rows(a, 100, 3, [0] * 700), "line 102: 701 columns, expected 785"),
    "empty-file": (lambda a: b"", "file is empty"),
    "header-only": (lambda a: make_csv([]), "header but no data rows"),
}


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_csv_fails_naming_file_and_line_and_writes_nothing(
    tmp_path: Path, tiny_csvs: dict[str, bytes], tiny_arrays, old_output: Path, kind: str
) -> None:
    make, expected = BAD_INPUTS[kind]
    before = snapshot(old_output)
    with pytest.raises(DataError) as info:
        run(bad_zip(tmp_path, tiny_csvs, make(tiny_arrays)), old_output)
    message = str(info.value)
    assert message.startswith(f"bad.zip:{TRAIN_CSV}: ")
    assert expected in message
    assert "\n" not in message
    assert snapshot(old_output) == before
    assert [p.name for p in old_output.parent.iterdir()] == ["processed"]


@pytest.mark.parametrize(
    "damage",
    [lambda raw: raw[: len(raw) // 3], lambda raw: b"PK\x03\x04" + b"\0" * 64],
    ids=["truncated", "corrupt"],
)
def test_bad_zip_writes_nothing(tiny_zip: Path, old_output: Path, damage) -> None:
    tiny_zip.write_bytes(damage(tiny_zip.read_bytes()))
    before = snapshot(old_output)
    with pytest.raises(DataError, match=r"sign-language-mnist\.zip: .*re-download"):
        run(tiny_zip, old_output)
    assert snapshot(old_output) == before


def test_missing_csv_writes_nothing(tmp_path: Path, tiny_csvs: dict[str, bytes], old_output: Path) -> None:
    source = write_zip(tmp_path / "half.zip", {TRAIN_CSV: tiny_csvs[TRAIN_CSV]})
    before = snapshot(old_output)
    with pytest.raises(DataError, match=rf"half\.zip: archive has no {TEST_CSV}"):
        run(source, old_output)
    assert snapshot(old_output) == before


@pytest.fixture
def tiny_is_official(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the tiny data set's row counts the 'official' ones, so the fingerprint check is reached."""
    monkeypatch.setitem(validate.EXPECTED_ROWS, "train", 240)
    monkeypatch.setitem(validate.EXPECTED_ROWS, "test", 72)


@pytest.mark.usefixtures("tiny_is_official")
def test_fingerprint_mismatch_writes_nothing(tiny_zip: Path, old_output: Path) -> None:
    before = snapshot(old_output)
    with pytest.raises(DataError) as info:
        run(tiny_zip, old_output, custom=False, expected_fingerprint="0" * 64)
    message = str(info.value)
    assert str(tiny_zip) in message
    assert "fingerprint" in message
    assert "000000000000" in message
    assert snapshot(old_output) == before


@pytest.mark.usefixtures("tiny_is_official")
def test_pinned_fingerprint_passes(tiny_zip: Path, tmp_path: Path) -> None:
    digest = run(tiny_zip, tmp_path / "custom")["fingerprint"]
    meta = run(tiny_zip, tmp_path / "official", custom=False, expected_fingerprint=digest)
    assert meta["dataset"] == "sign-mnist"
    assert meta["fingerprint"] == digest


def test_official_mode_checks_row_counts(tiny_zip: Path, old_output: Path) -> None:
    before = snapshot(old_output)
    with pytest.raises(DataError, match=r"240 data rows, expected 27455"):
        run(tiny_zip, old_output, custom=False, expected_fingerprint="0" * 64)
    assert snapshot(old_output) == before


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"val_fraction": 0.0}, "data.val_fraction=0.0"),
        ({"val_fraction": 1.0}, "data.val_fraction=1.0"),
        ({"custom": False, "expected_fingerprint": None}, "data.fingerprint is empty"),
        ({"custom": False, "expected_fingerprint": ""}, "data.fingerprint is empty"),
    ],
)
def test_bad_config_values(tiny_zip: Path, old_output: Path, overrides: dict, match: str) -> None:
    before = snapshot(old_output)
    with pytest.raises(ValueError, match=match):
        run(tiny_zip, old_output, **overrides)
    assert snapshot(old_output) == before


def test_failure_while_writing_keeps_old_output(
    tiny_zip: Path, old_output: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a full disk on the second split: the half-written temp folder must vanish, the old output stay
    real_savez = np.savez
    calls: list[str] = []

    def failing_savez(file, **arrays) -> None:
        calls.append(str(file))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_savez(file, **arrays)

    monkeypatch.setattr(processed_module.np, "savez", failing_savez)
    before = snapshot(old_output)
    with pytest.raises(OSError, match="No space left"):
        run(tiny_zip, old_output)
    assert len(calls) == 2
    assert snapshot(old_output) == before
    assert [p.name for p in old_output.parent.iterdir()] == ["processed"]


def test_folder_source_gives_same_result_as_zip(
    tiny_zip: Path, tiny_csvs: dict[str, bytes], tmp_path: Path
) -> None:
    folder = tmp_path / "csvs"
    folder.mkdir()
    for name, data in tiny_csvs.items():
        (folder / name).write_bytes(data)
    a, b = run(tiny_zip, tmp_path / "a"), run(folder, tmp_path / "b")
    assert a["fingerprint"] == b["fingerprint"]
    assert {k: v for k, v in snapshot(tmp_path / "a").items() if k != "meta.json"} == {
        k: v for k, v in snapshot(tmp_path / "b").items() if k != "meta.json"
    }


def test_csv_bytes_helper_round_trips(tiny_arrays) -> None:
    # guards the fixtures themselves: the crafted CSVs hold exactly the crafted arrays
    labels, images = tiny_arrays["test"]
    text = csv_bytes(labels, images).decode()
    first = text.splitlines()[1].split(",")
    assert int(first[0]) == labels[0]
    assert [int(v) for v in first[1:]] == images[0].ravel().tolist()
