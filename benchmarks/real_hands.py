"""How the exported model does on real phone photos: the real-hands dev set, both readings.

Full frame: the photo as a user passes it (centre crop). Hand box: cropped to the
annotated hand (square, 15% margin) — what a perfect hand finder would hand over. Each reading
is also measured with `--tta` (8 views of each photo averaged: crops at 0-15% margin, mirrored).
Writes reports/real_hands.json and plots under reports/real_hands/.

    python benchmarks/real_hands.py [--model models/model.onnx] [--dev-set ../shared/data/real-hands]
"""

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

from fingerspell.atomic import write_json
from fingerspell.inference.predictor import OnnxPredictor
from fingerspell.photos.dataset import load_photo_set
from fingerspell.photos.evaluate import READINGS, model_inputs, report, run_photos
from fingerspell.photos.plots import plot_confusion, plot_coverage

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODEL = REPO / "models" / "model.onnx"
DEFAULT_DEV_SET = REPO.parent / "shared" / "data" / "real-hands"


def dump_inputs(photos: list, letters: list[str], out: Path) -> int:
    """The 28x28 inputs of both readings as one npz, for runs that score many models (real_ablation.py)."""
    arrays = {reading: model_inputs(photos, reading)[0] for reading in READINGS}
    index = {letter: i for i, letter in enumerate(letters)}
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out,
        labels=np.array([index[p.letter] for p in photos]),
        groups=np.array([p.group for p in photos]),
        **arrays,
    )
    print(f"wrote {out}: {len(photos)} photos, readings {', '.join(READINGS)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--dev-set", type=Path, default=DEFAULT_DEV_SET)
    parser.add_argument("--out", type=Path, default=REPO / "reports")
    parser.add_argument("--bootstrap", type=int, default=2000)
    parser.add_argument(
        "--dump-dev",
        type=Path,
        help="only write the model inputs of both readings to this npz (luma grey, no dimming: for checkpoints)",
    )
    args = parser.parse_args()
    labels_csv = args.dev_set / "labels.csv"
    missing = [path for path in (args.model, labels_csv) if not path.is_file()]
    named = [path for path in missing if path not in (DEFAULT_MODEL, DEFAULT_DEV_SET / "labels.csv")]
    if named:  # a path the user gave: a typo, not a machine without the data
        print(f"real_hands: error: {named[0]} not found", file=sys.stderr)
        return 1
    if missing:  # `make bench` before `dvc repro`, or a machine without ../shared
        print(f"real_hands: skipped (need {args.model} and {labels_csv}; run dvc repro first)")
        return 0
    predictor = OnnxPredictor(args.model)
    photos = load_photo_set(labels_csv, predictor.letters, group_column="photo_id")
    if args.dump_dev:
        return dump_inputs(photos, predictor.letters, args.dump_dev)
    results, curves = {}, {}
    plots = args.out / "real_hands"
    plots.mkdir(parents=True, exist_ok=True)
    tta_results = {}
    for reading in READINGS:
        run = run_photos(predictor, photos, reading)
        result = report(run, predictor.letters, predictor.unsure_threshold, args.bootstrap, seed=0)
        curves[f"{reading} reading"] = result["coverage_curve"]
        plot_confusion(
            result["confusion"],
            predictor.letters,
            f"real hands, {reading} reading",
            plots / f"confusion_{reading}.png",
        )
        results[reading] = result
        # the same photos through `--tta` (8 views averaged), side by side with the plain reading
        tta = report(
            run_photos(predictor, photos, reading, tta=True),
            predictor.letters,
            predictor.unsure_threshold,
            args.bootstrap,
            seed=0,
        )
        tta_results[reading] = tta
        for name, r in ((reading, result), (f"{reading}+tta", tta)):
            lo, hi = r["top1_ci95"]
            print(
                f"{name:>8}: top-1 {r['top1']:.1%} [{lo:.1%}, {hi:.1%}]  top-3 {r['top3']:.1%}  ECE {r['ece']:.1%}"
            )
    plot_coverage(curves, "real hands: accuracy vs coverage", plots / "coverage.png")
    summary = {
        "model": str(args.model),
        "model_metadata": predictor.metadata.to_dict(),
        "dev_set": str(args.dev_set),
        "machine": {"python": sys.version.split()[0], "platform": platform.platform()},
        "readings": results,
        "readings_tta": tta_results,
    }
    write_json(args.out / "real_hands.json", summary)
    both = {**results, **{f"{r}+tta": v for r, v in tta_results.items()}}
    print(json.dumps({r: {"top1": v["top1"], "top1_ci95": v["top1_ci95"]} for r, v in both.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
