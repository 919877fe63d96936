"""`fingerspell-predict` on files made from real test-split images (so the right letters are known)."""

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fingerspell.inference.cli import main
from tests.fixtures.models import KnownSample

pytestmark = pytest.mark.slow
CMD = [sys.executable, "-m", "fingerspell.inference.cli"]
HEADER = "label," + ",".join(f"pixel{i}" for i in range(1, 785))


def save(sample: KnownSample, path: Path, colour: bool = False, size: int = 112) -> Path:
    img = Image.fromarray(sample.pixels).resize((size, size), Image.Resampling.BICUBIC)
    if colour:
        img = img.convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, quality=95) if path.suffix == ".jpg" else img.save(path)
    return path


@pytest.fixture
def good_files(known_samples: list[KnownSample], tmp_path: Path) -> dict[Path, str]:
    """PNG (grey) and JPEG (colour) files in a folder tree, mapped to their true letters."""
    files = {save(known_samples[0], tmp_path / "one.png"): known_samples[0].letter}
    for i, sample in enumerate(known_samples[1:4]):
        files[save(sample, tmp_path / "folder" / "deep" / f"{i}.jpg", colour=True)] = sample.letter
    return files


def test_done_when_command_prints_correct_letters_as_json(
    trained_onnx: Path, good_files: dict[Path, str]
) -> None:
    folder = next(iter(good_files)).parent / "folder"
    one = next(iter(good_files))
    done = subprocess.run(
        [*CMD, str(trained_onnx), str(one), f"{folder}/", "--top-k", "3", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert set(doc) == {"model", "predictions", "errors"}
    assert doc["errors"] == []
    letters = doc["model"]["letters"]
    assert len(letters) == 24
    got = {Path(p["input"]).resolve(): p for p in doc["predictions"]}
    assert set(got) == {p.resolve() for p in good_files}
    for path, letter in good_files.items():
        pred = got[path.resolve()]
        assert set(pred) == {"input", "letter", "probability", "unsure", "top_k"}
        assert pred["letter"] == letter
        assert len(pred["top_k"]) == 3
        assert pred["top_k"][0] == {"letter": pred["letter"], "probability": pred["probability"]}
        probs = [t["probability"] for t in pred["top_k"]]
        assert probs == sorted(probs, reverse=True)
        assert 0 < sum(probs) <= 1 + 1e-5
        assert all(t["letter"] in letters for t in pred["top_k"])


def test_bad_inputs_fail_one_line_each_while_good_ones_are_predicted(
    trained_onnx: Path, known_samples: list[KnownSample], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = save(known_samples[0], tmp_path / "good.png")
    png = good.read_bytes()
    bad = {
        "missing": tmp_path / "missing.png",
        "not an image": tmp_path / "notes.png",
        "truncated": tmp_path / "cut.png",
        "empty": tmp_path / "empty.jpg",
        "too large": tmp_path / "huge.png",
        "wrong columns": tmp_path / "table.csv",
    }
    bad["not an image"].write_text("hello, I am text")
    bad["truncated"].write_bytes(png[: len(png) // 2])
    bad["empty"].write_bytes(b"")
    Image.new("L", (600, 600), 128).save(bad["too large"])
    bad["wrong columns"].write_text("a,b,c\n1,2,3\n")
    code = main([str(trained_onnx), str(good), *map(str, bad.values()), "--json", "--max-pixels", "200000"])
    out, err = capsys.readouterr()
    assert code == 1
    doc = json.loads(out)
    assert [p["letter"] for p in doc["predictions"]] == [known_samples[0].letter]
    lines = err.strip().splitlines()
    assert len(lines) == len(bad) == len(doc["errors"])
    assert "Traceback" not in err
    expected_words = {
        "missing": "no such file",
        "not an image": "not an image",
        "truncated": "truncated",
        "empty": "empty",
        "too large": "over the limit",
        "wrong columns": "expected Sign-MNIST columns",
    }
    for line, (kind, path) in zip(lines, bad.items(), strict=True):
        assert line.startswith(f"fingerspell-predict: {path}"), line
        assert expected_words[kind] in line, (kind, line)


def test_csv_rows_table_and_csv_output(
    trained_onnx: Path, known_samples: list[KnownSample], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    rows = [f"{alphabet.index(s.letter)}," + ",".join(map(str, s.pixels.ravel())) for s in known_samples]
    table = tmp_path / "rows.csv"
    table.write_text("\r\n".join([HEADER, *rows]) + "\r\n")
    assert main([str(trained_onnx), str(table), "--csv", "--top-k", "2"]) == 0
    parsed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["input"] for r in parsed] == [f"{table}:{i}" for i in range(2, 2 + len(rows))]
    assert [r["letter"] for r in parsed] == [s.letter for s in known_samples]
    assert [r["expected"] for r in parsed] == [s.letter for s in known_samples]
    assert all(len(r["top_k"].split()) == 2 for r in parsed)

    assert main([str(trained_onnx), str(table), "--batch-size", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["input", "letter", "prob"]
    assert [line.split()[1].rstrip("?") for line in out[1:]] == [s.letter for s in known_samples]
    assert [line.rsplit("(expected ", 1)[1] for line in out[1:]] == [f"{s.letter})" for s in known_samples]

    # more alternatives than letters: every letter, and the header says how many
    assert main([str(trained_onnx), str(table), "--top-k", "99"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[-1] == "top-24"
    assert all(len(line.split("(expected")[0].split()[3:]) == 24 for line in out[1:])


def test_a_row_labelled_with_no_letter_is_refused_not_reported_as_truth(
    trained_onnx: Path, known_samples: list[KnownSample], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Label 9 (J) and 25 (Z) are not in Sign-MNIST, and 3.5 is no label: one line each, the
    other rows still predicted with their expected letters, exit 1."""
    good = known_samples[0]
    pixels = ",".join(map(str, good.pixels.ravel()))
    rows = [
        f"{label},{pixels}" for label in ("9", "25", "3.5", "ABCDEFGHIJKLMNOPQRSTUVWXYZ".index(good.letter))
    ]
    table = tmp_path / "labels.csv"
    table.write_text("\n".join([HEADER, *rows]) + "\n")
    assert main([str(trained_onnx), str(table), "--csv"]) == 1
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 3
    for line, (number, label) in zip(errors, [(2, "9"), (3, "25"), (4, "3.5")], strict=True):
        assert line.startswith(
            f"fingerspell-predict: {table}:{number}: label {label} is not a Sign-MNIST letter"
        )
    (row,) = list(csv.DictReader(io.StringIO(captured.out)))
    assert (row["input"], row["expected"]) == (f"{table}:5", good.letter)


def test_unsure_threshold_overrides_the_models_own(
    trained_onnx: Path, known_samples: list[KnownSample], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = [str(save(sample, tmp_path / f"{i}.png")) for i, sample in enumerate(known_samples)]
    assert main([str(trained_onnx), *images, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    own = doc["model"]["unsure_threshold"]  # the test model's own: none, or a number
    plain = {p["input"]: p for p in doc["predictions"]}
    assert all(p["unsure"] == (own is not None and p["probability"] < own) for p in plain.values())
    least = min(plain.values(), key=lambda p: p["probability"])
    assert least["probability"] < 1.0, "premise: some answer is short of certain"
    stricter = (least["probability"] + 1.0) / 2
    assert main([str(trained_onnx), *images, "--json", "--unsure-threshold", str(stricter)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"]["unsure_threshold"] == pytest.approx(stricter)
    for pred in doc["predictions"]:
        assert pred["unsure"] == (pred["probability"] < stricter)
        assert pred["letter"] == plain[pred["input"]]["letter"]  # the answers stay; only the flag moves
    assert any(p["unsure"] for p in doc["predictions"])


def test_stdin(trained_onnx: Path, known_samples: list[KnownSample], tmp_path: Path) -> None:
    png = save(known_samples[1], tmp_path / "s.png").read_bytes()
    done = subprocess.run(
        [*CMD, str(trained_onnx), "-", "--json"], input=png, capture_output=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    (pred,) = json.loads(done.stdout)["predictions"]
    assert pred["input"] == "<stdin>"
    assert pred["letter"] == known_samples[1].letter


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--top-k", "0"], "--top-k"),
        (["--batch-size", "-1"], "--batch-size"),
        (["--json", "--csv"], "not allowed with"),
        (["--crop", "middle"], "choose from 'center', 'auto'"),
        (["--unsure-threshold", "1.5"], "--unsure-threshold: Input should be less than or equal to 1"),
        (["--unsure-threshold", "-0.1"], "--unsure-threshold: Input should be greater than or equal to 0"),
        (["--unsure-threshold", "nan"], "--unsure-threshold: Input should be a finite number"),
    ],
)
def test_usage_errors_exit_2(trained_onnx: Path, tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        [*CMD, str(trained_onnx), str(tmp_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()  # one line, not argparse's usage block above it
    assert line.startswith("fingerspell-predict: error: ")
    assert message in line


def test_bad_model_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(image)
    assert main([str(tmp_path / "nope.onnx"), str(image)]) == 2
    assert "model not found" in capsys.readouterr().err
    fake = tmp_path / "fake.onnx"
    fake.write_text("not onnx")
    assert main([str(fake), str(image)]) == 2
    err = capsys.readouterr().err
    assert "not a loadable ONNX model" in err
    assert len(err.strip().splitlines()) == 1


def test_tta_averages_views_of_photos_and_leaves_tight_crops_alone(
    trained_onnx: Path, known_samples: list[KnownSample], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A photo with a hand in a scene gets 8 averaged views; a tight Sign-MNIST crop (as an image
    file or a CSV row) keeps exactly its plain answer: zooms and mirrors would cut and flip it."""
    from fingerspell.inference.images import read_image_file, to_model_views
    from fingerspell.inference.predictor import OnnxPredictor
    from tests.fixtures.scenes import scene_with_hand

    photo = tmp_path / "scene.jpg"
    scene_with_hand(270, 170).save(photo, quality=90)
    tight = save(known_samples[0], tmp_path / "tight.jpg", colour=True, size=160)
    rows = tmp_path / "rows.csv"
    sample = known_samples[1]
    rows.write_text(HEADER + "\n" + ",".join(["0", *map(str, sample.pixels.ravel())]) + "\n")

    def run(*extra: str) -> dict:  # in-process: the entry point without two interpreter start-ups
        assert (
            main([str(trained_onnx), str(photo), str(tight), str(rows), "--json", "--top-k", "24", *extra])
            == 0
        )
        return json.loads(capsys.readouterr().out)

    tta, plain = run("--tta"), run()
    assert tta["model"]["tta"] is True
    assert plain["model"]["tta"] is False
    predictor = OnnxPredictor(trained_onnx)
    views = to_model_views(read_image_file(photo, colour=True), crop="auto")
    expected = predictor.predict_proba_views(views[None])[0]
    got = {t["letter"]: t["probability"] for t in tta["predictions"][0]["top_k"]}
    for i, letter in enumerate(predictor.letters):
        assert got[letter] == pytest.approx(float(expected[i]), abs=1e-5)
    assert tta["predictions"][0]["top_k"] != plain["predictions"][0]["top_k"], "the views change the answer"
    assert tta["predictions"][1]["letter"] == plain["predictions"][1]["letter"] == known_samples[0].letter
    for a, b in zip(tta["predictions"][1]["top_k"], plain["predictions"][1]["top_k"], strict=True):
        assert a["probability"] == pytest.approx(b["probability"], abs=1e-5), "a tight crop is one view"
    assert tta["predictions"][2] == plain["predictions"][2], "a 28x28 CSV row is one view already"
