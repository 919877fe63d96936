"""`fingerspell-evaluate-images` end to end on photo sets the test writes from real test-split images.

The images are ones the session's model reads right (`known_samples`); copies filed under a wrong
letter make the expected accuracy exact (50%), so the report's numbers can be checked, not only
its shape.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.fixtures.models import KnownSample

pytestmark = pytest.mark.slow


def run_cli(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "fingerspell.photos.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def wrong_letter(letter: str, letters: list[str]) -> str:
    return next(other for other in letters if other != letter)


@pytest.fixture
def half_right(known_samples: list[KnownSample], tmp_path: Path) -> tuple[Path, Path, int]:
    """An ImageFolder and a CSV: each known image once under its letter and once under another."""
    letters = [s.letter for s in known_samples]
    root = tmp_path / "photos"
    rows = ["path,letter,photo_id"]
    for i, sample in enumerate(known_samples):
        img = Image.fromarray(sample.pixels).resize((84, 84), Image.Resampling.NEAREST)
        for tag, letter in (("right", sample.letter), ("wrong", wrong_letter(sample.letter, letters))):
            path = root / letter / f"{i}_{tag}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            img.save(path)
            rows.append(f"photos/{letter}/{i}_{tag}.png,{letter},p{i}")
    csv = tmp_path / "photos.csv"
    csv.write_text("\n".join(rows) + "\n")
    return root, csv, len(known_samples)


@pytest.mark.parametrize("reading", ["full", "auto"])
def test_folder_accuracy_is_exactly_what_was_written(
    trained_onnx: Path, half_right: tuple[Path, Path, int], tmp_path: Path, reading: str
) -> None:
    root, _, n = half_right
    out = tmp_path / "report"
    done = run_cli(str(trained_onnx), str(root), "--reading", reading, "--out", str(out), "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["n_images"] == 2 * n
    assert result["top1"] == pytest.approx(0.5), "each image is right under its letter, wrong under the other"
    assert result["reading"] == reading
    assert json.loads((out / "report.json").read_text())["top1"] == result["top1"]
    for plot in ("confusion.png", "coverage.png"):
        assert (out / plot).stat().st_size > 1000


def test_csv_groups_versions_of_one_photo(trained_onnx: Path, half_right: tuple[Path, Path, int]) -> None:
    _, csv, n = half_right
    done = run_cli(str(trained_onnx), str(csv), "--group-column", "photo_id", "--json", "--bootstrap", "500")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["n_groups"] == n, "the right and the wrong copy of an image are one photo"
    lo, hi = result["top1_ci95"]
    assert lo == pytest.approx(0.5)
    assert hi == pytest.approx(0.5), "every group is exactly half right, so resampling groups cannot move it"
    table = run_cli(str(trained_onnx), str(csv), "--group-column", "photo_id")
    assert f"images {2 * n} in {n} groups" in table.stdout


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda root: (root / "J").mkdir(parents=True), "not one of the model's letters"),
        (lambda root: root.mkdir(parents=True), "no images found"),
        (lambda root: (root.parent / "bad.csv").write_text("path,letter\nnope.png,A\n"), "not found"),
    ],
)
def test_bad_sets_are_one_clear_line(trained_onnx: Path, tmp_path: Path, make, says: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "set"
    make(root)
    source = root if root.exists() else tmp_path / "bad.csv"
    done = run_cli(str(trained_onnx), str(source))
    assert done.returncode == 1
    assert says in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_tta_averages_the_views_of_each_photo(
    trained_onnx: Path, half_right: tuple[Path, Path, int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Photos with a hand in a scene get 8 averaged views; tight crops keep their plain answer.

    In-process (`main`), unlike the subprocess tests above: the same entry point, without four more
    interpreter start-ups."""
    from fingerspell.inference.predictor import OnnxPredictor
    from fingerspell.photos.cli import main
    from fingerspell.photos.dataset import load_photo_set
    from fingerspell.photos.evaluate import model_inputs
    from tests.fixtures.scenes import scene_with_hand

    def evaluate(source: Path, *extra: str) -> dict:
        assert main([str(trained_onnx), str(source), "--reading", "auto", "--json", *extra]) == 0
        return json.loads(capsys.readouterr().out)

    scenes = tmp_path / "scenes"
    for i, (letter, x, y) in enumerate([("A", 270, 170), ("B", 150, 120), ("C", 200, 200), ("D", 120, 90)]):
        (scenes / letter).mkdir(parents=True)
        scene_with_hand(x, y, seed=i).save(scenes / letter / f"{i}.jpg", quality=90)
    result = evaluate(scenes, "--tta")
    assert result["tta"] is True
    assert result["n_images"] == 4
    predictor = OnnxPredictor(trained_onnx)
    views, _, _ = model_inputs(load_photo_set(scenes, predictor.letters), "auto", tta=True)
    assert views.shape == (4, 8, 28, 28)
    expected = predictor.predict_proba_views(views).max(axis=1).mean()
    assert result["mean_confidence"] == pytest.approx(float(expected), abs=1e-4)
    plain = evaluate(scenes)
    assert plain["tta"] is False
    assert plain["mean_confidence"] != pytest.approx(result["mean_confidence"], abs=1e-4)
    assert main([str(trained_onnx), str(scenes), "--reading", "auto", "--tta"]) == 0
    assert "images 4 in 4 groups (auto reading, 8 views each)" in capsys.readouterr().out
    # tight crops (upscaled Sign-MNIST images): nothing for the finder, so every view is the plain crop
    root, _, _ = half_right
    tight = evaluate(root, "--tta")
    assert tight["top1"] == pytest.approx(0.5)
    assert tight["mean_confidence"] == pytest.approx(evaluate(root)["mean_confidence"], abs=1e-5)
