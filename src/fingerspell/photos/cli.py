"""`fingerspell-evaluate-images MODEL SOURCE`: accuracy, intervals and calibration on labelled photos."""

import argparse
import contextlib
import math
import sys
from pathlib import Path

from fingerspell.atomic import json_text, temp_beside, write_json
from fingerspell.cli_parser import OneLineParser
from fingerspell.inference.images import ImageError, quiet_bomb_warning
from fingerspell.inference.model_source import resolve_model_path
from fingerspell.inference.predictor import ModelError, OnnxPredictor
from fingerspell.photos.dataset import PhotoSetError, load_photo_set
from fingerspell.photos.evaluate import READINGS, report, run_photos

PROG = "fingerspell-evaluate-images"


class OutError(ValueError):
    """`--out` cannot take the report; found before the evaluation, not after it."""


def probability(text: str) -> float:
    """An argparse type for --threshold: a number in [0, 1], as predict and serve require."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise argparse.ArgumentTypeError(f"{text} is outside [0, 1]; give a confidence such as 0.5")
    return value


def prepare_out(out: Path) -> list[Path]:
    """Make `out` and prove a file can be written there, so a bad --out fails in seconds.

    Returns the folders it created (innermost first), to remove if the evaluation then fails.

    Raises:
        OutError: `out` is a file, or cannot be created or written to.
    """
    if out.exists() and not out.is_dir():
        raise OutError(f"--out {out} is a file; give a folder for report.json and the plots")
    created = [p for p in (out, *out.parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        temp_beside(out / "report.json").unlink()
    except OSError as err:
        remove_empty(created)
        raise OutError(f"cannot write to --out {out}: {err.strerror or err}") from err
    return created


def remove_empty(folders: list[Path]) -> None:
    """Remove the folders `prepare_out` made (innermost first), if nothing was written there."""
    for folder in folders:
        with contextlib.suppress(OSError):
            folder.rmdir()


def build_parser() -> argparse.ArgumentParser:
    """The command line: model, source and reading options."""
    parser = OneLineParser(
        prog=PROG,
        description="Measure a fingerspell ONNX model on a labelled photo set: an ImageFolder tree "
        "(<letter>/<image>) or a CSV with path,letter and optional box_cx,box_cy,box_w,box_h.",
    )
    parser.add_argument(
        "model", help="the .onnx model, or an MLflow URI (models:/fingerspell-onnx@champion, runs:/...)"
    )
    parser.add_argument("source", type=Path, help="folder with one subfolder per letter, or a CSV")
    parser.add_argument(
        "--reading",
        choices=READINGS,
        default="full",
        help="full frame (centre crop), auto (the hand finder's crop) or box (the CSV's hand box)",
    )
    parser.add_argument(
        "--tta",
        action="store_true",
        help="average the model over 8 views of each photo (crops at 0-15%% margin, mirrored)",
    )
    parser.add_argument("--group-column", help="CSV column that groups versions of one photo, e.g. photo_id")
    parser.add_argument(
        "--threshold", type=probability, help="confidence threshold in [0, 1] (default: the model's own)"
    )
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% interval"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="folder for report.json and the plots")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit 0 on success, 1 for a bad model/source or skipped images, 2 for usage errors (--out included)."""
    quiet_bomb_warning()
    args = build_parser().parse_args(argv)
    if args.bootstrap < 1:
        return fail("--bootstrap must be >= 1", 2)
    created: list[Path] = []
    try:
        created = prepare_out(args.out) if args.out else []
        predictor = OnnxPredictor(resolve_model_path(args.model))
        photos = load_photo_set(args.source, predictor.letters, args.group_column)
        threshold = args.threshold if args.threshold is not None else predictor.unsure_threshold
        run = run_photos(predictor, photos, args.reading, args.tta)
        result = report(run, predictor.letters, threshold, args.bootstrap, args.seed)
    except OutError as err:
        return fail(str(err), 2)
    except (ModelError, PhotoSetError, ImageError, ValueError) as err:
        remove_empty(created)  # a failed evaluation leaves no empty --out behind
        return fail(str(err), 1)
    except BaseException:  # Ctrl-C mid-evaluation, or a bug: same tidy-up, then the usual exit
        remove_empty(created)
        raise
    result.update(
        {"model": str(args.model), "source": str(args.source), "reading": args.reading, "tta": args.tta}
    )
    if args.out:
        try:
            write_outputs(result, predictor.letters, args)
        except OSError as err:  # the disk filled or the folder went away during the evaluation
            return fail(f"cannot write to --out {args.out}: {err.strerror or err}; nothing written", 1)
    if args.json:
        print(json_text(result), end="")  # noqa: T201
    else:
        print(format_table(result))  # noqa: T201
    for line in run.failed:
        print(f"{PROG}: skipped: {line}", file=sys.stderr)  # noqa: T201
    # as fingerspell-predict: the report covers the rest, but a script must not take it for the whole set
    return 1 if run.failed else 0


def fail(message: str, status: int) -> int:
    """One `prog: error: ...` line on stderr; returns the exit status to give."""
    print(f"{PROG}: error: {message}", file=sys.stderr)  # noqa: T201
    return status


def write_outputs(result: dict, letters: tuple[str, ...], args: argparse.Namespace) -> None:
    """report.json and the two plots under --out, each written to a temp file and renamed.

    If one fails, those already written in this run are removed: a report never sits beside
    plots of another run, or without its own.
    """
    from fingerspell.photos.plots import plot_confusion, plot_coverage

    title = f"{args.source.name} ({args.reading})"
    steps = [
        (args.out / "report.json", lambda path: write_json(path, result)),
        (args.out / "confusion.png", lambda path: plot_confusion(result["confusion"], letters, title, path)),
        (
            args.out / "coverage.png",
            lambda path: plot_coverage(
                {args.reading: result["coverage_curve"]}, "accuracy vs coverage", path
            ),
        ),
    ]
    written: list[Path] = []
    try:
        for path, write in steps:
            write(path)
            written.append(path)
    except OSError:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def format_table(result: dict) -> str:
    """A short readable summary."""
    lo, hi = result["top1_ci95"]
    lo3, hi3 = result["top3_ci95"]
    lines = [
        f"images {result['n_images']} in {result['n_groups']} groups ({result['reading']} reading"
        + (", 8 views each)" if result.get("tta") else ")"),
        f"top-1  {result['top1']:.1%}  (95% CI {lo:.1%}-{hi:.1%}; chance {result['chance']:.1%})",
        f"top-3  {result['top3']:.1%}  (95% CI {lo3:.1%}-{hi3:.1%})",
        f"ECE    {result['ece']:.1%}   NLL {result['nll']:.3f}   mean confidence {result['mean_confidence']:.1%}",
    ]
    if "at_threshold" in result:
        t = result["at_threshold"]
        acc = "n/a" if t["accuracy_answered"] is None else f"{t['accuracy_answered']:.1%}"
        lines.append(
            f"at threshold {t['threshold']:.2f}: answers {t['coverage']:.1%}, accuracy of answers {acc}"
        )
    worst = sorted((v["acc"], k) for k, v in result["per_letter"].items() if v["acc"] is not None)[:5]
    lines.append("weakest letters: " + ", ".join(f"{k} {a:.0%}" for a, k in worst))
    return "\n".join(lines)


def entry() -> None:
    """Console script; a closed pipe (`| head`) ends quietly."""
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.stderr.close()
        sys.exit(0)


if __name__ == "__main__":
    entry()
