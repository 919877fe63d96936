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


def test_unreadable_images_are_skipped_named_and_make_the_exit_1(
    trained_onnx: Path, half_right: tuple[Path, Path, int], tmp_path: Path
) -> None:
    root, _, n = half_right
    letter = next(p.name for p in sorted(root.iterdir()))
    broken = root / letter / "notes.png"
    broken.write_text("not an image")
    done = run_cli(str(trained_onnx), str(root), "--json", "--out", str(tmp_path / "report"))
    assert done.returncode == 1, "a script must not take a report of part of the set for the whole"
    result = json.loads(done.stdout)
    assert result["n_images"] == 2 * n, "the readable images are still evaluated"
    assert result["top1"] == pytest.approx(0.5)
    assert len(result["unreadable"]) == 1
    assert done.stderr.splitlines() == [f"fingerspell-evaluate-images: skipped: {result['unreadable'][0]}"]
    assert str(broken) in done.stderr
    assert (tmp_path / "report" / "report.json").is_file()


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


@pytest.mark.parametrize("where", ["a file", "under a file", "/proc"])
def test_unusable_out_is_one_line_before_any_evaluation(
    trained_onnx: Path,
    half_right: tuple[Path, Path, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    where: str,
) -> None:
    """A real model and a real set: only --out is wrong, and it is caught before the photos are run."""
    from fingerspell.photos import cli

    def must_not_run(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the evaluation ran before --out was checked")

    monkeypatch.setattr(cli, "run_photos", must_not_run)
    root, _, _ = half_right
    (tmp_path / "README.md").write_text("# keep me\n")
    out = {
        "a file": tmp_path / "README.md",
        "under a file": tmp_path / "README.md" / "report",
        "/proc": Path("/proc/x"),
    }[where]
    if where == "/proc" and not Path("/proc/self").exists():
        pytest.skip("no /proc on this system")
    assert cli.main([str(trained_onnx), str(root), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    expected = (
        f"--out {out} is a file; give a folder for report.json and the plots"
        if where == "a file"
        else f"cannot write to --out {out}: "
    )
    assert err.startswith(f"fingerspell-evaluate-images: error: {expected}")
    assert (tmp_path / "README.md").read_text() == "# keep me\n"


def test_outputs_are_replaced_by_rename_not_written_in_place(
    trained_onnx: Path, half_right: tuple[Path, Path, int], tmp_path: Path
) -> None:
    """Old outputs hard-linked elsewhere keep their bytes: each new file is a temp file renamed in,
    so a reader (or a crash) never sees a half-written report or plot."""
    root, _, _ = half_right
    out, elsewhere = tmp_path / "report", tmp_path / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    names = ["confusion.png", "coverage.png", "report.json"]
    for name in names:
        (elsewhere / name).write_text("old\n")
        (out / name).hardlink_to(elsewhere / name)
    done = run_cli(str(trained_onnx), str(root), "--out", str(out), "--bootstrap", "50")
    assert done.returncode == 0, done.stderr
    for name in names:
        assert (elsewhere / name).read_bytes() == b"old\n", f"{name} was overwritten in place"
        assert (out / name).stat().st_size > 1000
    assert sorted(p.name for p in out.iterdir()) == names, "no temp files left behind"


def test_a_write_that_fails_after_the_evaluation_leaves_no_partial_report(
    trained_onnx: Path,
    half_right: tuple[Path, Path, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The disk fills while the last plot is written: the report and the first plot of this run
    are removed again (no report beside missing or older plots), one line, exit 1."""
    import errno

    from fingerspell.photos import plots

    def disk_full(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(plots, "plot_coverage", disk_full)
    root, _, _ = half_right
    out = tmp_path / "report"
    from fingerspell.photos import cli

    assert cli.main([str(trained_onnx), str(root), "--out", str(out), "--bootstrap", "50"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"fingerspell-evaluate-images: error: cannot write to --out {out}: No space left on device; nothing written"
    )
    assert list(out.iterdir()) == []


HINT = "SOURCE must be a folder with one subfolder per letter, or a UTF-8 CSV with path,letter columns"
BOX_HEADER = b"path,letter,box_cx,box_cy,box_w,box_h\n"


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d, png: png, f" is an image; {HINT} (to read one image, use fingerspell-predict)"),
        (
            lambda d, png: _write(d / "x.csv", png.read_bytes()),
            f" is an image, not a CSV; {HINT} (to read one image, use fingerspell-predict)",
        ),
        (
            lambda d, png: _write(d / "x.csv", bytes(range(128, 256)) * 4),
            f" is not UTF-8 text (invalid start byte); {HINT}",
        ),
        (
            lambda d, png: _write(d / "x.csv", BOX_HEADER + b"hand.png,A,0.5,0.5,-1,0.3\n"),
            ": line 2: hand box size must be positive (box_w=-1, box_h=0.3)",
        ),
        (
            lambda d, png: _write(
                d / "x.csv", BOX_HEADER + b"hand.png,A,0.5,0.5,0.2,0.3\nhand.png,A,0.5,0.5,0.3,0\n"
            ),
            ": line 3: hand box size must be positive (box_w=0.3, box_h=0)",
        ),
    ],
    ids=["image", "image-named-csv", "binary-csv", "negative-box", "zero-box"],
)
def test_wrong_kind_of_source_is_one_line_naming_it(  # type: ignore[no-untyped-def]
    trained_onnx: Path, known_samples: list[KnownSample], tmp_path: Path, make, says: str
) -> None:
    png = tmp_path / "hand.png"
    Image.fromarray(known_samples[0].pixels).resize((84, 84)).save(png)
    source = make(tmp_path, png)
    done = run_cli(str(trained_onnx), str(source), "--reading", "box" if "box" in says else "full")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [f"fingerspell-evaluate-images: error: {source}{says}"]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_threshold_outside_zero_one_is_refused(
    trained_onnx: Path, half_right: tuple[Path, Path, int]
) -> None:
    root, _, _ = half_right
    done = run_cli(str(trained_onnx), str(root), "--threshold", "2")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "fingerspell-evaluate-images: error: argument --threshold: 2 is outside [0, 1]; give a confidence"
        " such as 0.5 (see fingerspell-evaluate-images --help)"
    ]
    assert done.stdout == ""
    edge = run_cli(str(trained_onnx), str(root), "--threshold", "1", "--json", "--bootstrap", "50")
    assert edge.returncode == 0, edge.stderr
    doc = json.loads(edge.stdout, parse_constant=_no_nan)  # strict JSON: browsers and jq refuse NaN
    assert doc["at_threshold"]["threshold"] == 1.0
    for point in doc["coverage_curve"]:  # nothing answered: no accuracy (null), not NaN
        assert (point["coverage"] == 0) == (point["accuracy"] is None), point


def _no_nan(name: str) -> None:
    raise AssertionError(f"{name} in the JSON output")


def test_mlflow_model_uris_evaluate_the_registered_model(
    trained_onnx: Path,
    half_right: tuple[Path, Path, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The model logged and registered the project's way, in this test's own sqlite store, read back
    by alias, by version and by run: the same numbers as the file itself."""
    import os

    import mlflow

    from fingerspell.photos.cli import main
    from fingerspell.tracking.onnx_logging import log_onnx_model

    monkeypatch.chdir(tmp_path)  # artifacts land in ./mlruns: keep them out of the repository
    store = os.environ["MLFLOW_TRACKING_URI"]
    assert store.startswith("sqlite:///"), "conftest gives every test its own sqlite store"
    mlflow.set_tracking_uri(store)
    with mlflow.start_run() as run:
        pass
    logged = log_onnx_model(trained_onnx, run.info.run_id, store, "fingerspell-onnx", ("champion",))
    root, _, _ = half_right

    def evaluate(model: str) -> dict:
        assert main([model, str(root), "--json", "--bootstrap", "50"]) == 0
        return json.loads(capsys.readouterr().out)

    from_file = evaluate(str(trained_onnx))
    for uri in (
        "models:/fingerspell-onnx@champion",
        f"models:/fingerspell-onnx/{logged['version']}",
        f"runs:/{run.info.run_id}/onnx",
    ):
        from_mlflow = evaluate(uri)
        assert from_mlflow["model"] == uri
        for key in ("n_images", "top1", "top3", "mean_confidence", "nll", "confusion"):
            assert from_mlflow[key] == from_file[key], (uri, key)

    assert main(["models:/no-such-model@champion", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "fingerspell-evaluate-images: error: models:/no-such-model@champion: cannot resolve in MLflow"
    )
    assert "dvc repro" not in err
    assert len(err.strip().splitlines()) == 1
