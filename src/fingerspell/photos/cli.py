"""`fingerspell-evaluate-images MODEL SOURCE`: accuracy, intervals and calibration on labelled photos."""

import argparse
import sys
from pathlib import Path

from fingerspell.inference.images import ImageError
from fingerspell.inference.predictor import ModelError, OnnxPredictor
from fingerspell.photos.dataset import PhotoSetError, load_photo_set
from fingerspell.photos.evaluate import READINGS, report, run_photos, write_json_atomic

PROG = "fingerspell-evaluate-images"


def build_parser() -> argparse.ArgumentParser:
    """The command line: model, source and reading options."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Measure a fingerspell ONNX model on a labelled photo set: an ImageFolder tree "
        "(<letter>/<image>) or a CSV with path,letter and optional box_cx,box_cy,box_w,box_h.",
    )
    parser.add_argument("model", help="path to the .onnx model")
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
    parser.add_argument("--threshold", type=float, help="confidence threshold (default: the model's own)")
    parser.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamples for the 95%% interval"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="folder for report.json and the plots")
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; exit 0 on success, 1 for bad model/source, 2 for usage errors."""
    args = build_parser().parse_args(argv)
    if args.bootstrap < 1:
        print(f"{PROG}: error: --bootstrap must be >= 1", file=sys.stderr)  # noqa: T201
        return 2
    try:
        predictor = OnnxPredictor(args.model)
        photos = load_photo_set(args.source, predictor.letters, args.group_column)
        threshold = args.threshold if args.threshold is not None else predictor.unsure_threshold
        run = run_photos(predictor, photos, args.reading, args.tta)
        result = report(run, predictor.letters, threshold, args.bootstrap, args.seed)
    except (ModelError, PhotoSetError, ImageError, ValueError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)  # noqa: T201
        return 1
    result.update(
        {"model": str(args.model), "source": str(args.source), "reading": args.reading, "tta": args.tta}
    )
    if args.out:
        from fingerspell.photos.plots import plot_confusion, plot_coverage

        write_json_atomic(result, args.out / "report.json")
        plot_confusion(
            result["confusion"],
            predictor.letters,
            f"{args.source.name} ({args.reading})",
            args.out / "confusion.png",
        )
        plot_coverage(
            {args.reading: result["coverage_curve"]}, "accuracy vs coverage", args.out / "coverage.png"
        )
    if args.json:
        import json

        print(json.dumps(result, indent=2))  # noqa: T201
    else:
        print(format_table(result))  # noqa: T201
    for line in run.failed:
        print(f"{PROG}: skipped: {line}", file=sys.stderr)  # noqa: T201
    return 0


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
