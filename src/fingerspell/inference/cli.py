"""`fingerspell-predict MODEL INPUT...`: letters from images, folders, Sign-MNIST CSVs or stdin.

Results go to stdout (a table, `--json` or `--csv`); each input that cannot be read is one
line on stderr, and the rest are still predicted. Exit 0: all inputs read; 1: some failed;
2: usage error (bad option, unusable model). Imports no torch, Lightning or MLflow.
"""

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fingerspell.cli_parser import OneLineParser
from fingerspell.inference.images import (
    CROPS,
    DEFAULT_CROP,
    DEFAULT_MAX_PIXELS,
    PILLOW_MAX_PIXELS,
    Crop,
    quiet_bomb_warning,
)
from fingerspell.inference.predictor import ModelError, OnnxPredictor, Prediction
from fingerspell.inference.sources import Item, expand

COMMAND = "fingerspell-predict"
EXIT_OK, EXIT_INPUT_FAILED, EXIT_USAGE = 0, 1, 2


class PredictSettings(BaseModel):
    """The command line, validated."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    inputs: list[str] = Field(min_length=1)
    top_k: int = Field(3, ge=1)
    batch_size: int = Field(256, ge=1)
    threads: int | None = Field(None, ge=1)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, le=PILLOW_MAX_PIXELS)
    output: str = Field("table", pattern="^(table|json|csv)$")
    crop: Crop = DEFAULT_CROP
    tta: bool = False
    unsure_threshold: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=COMMAND,
        description="Read ASL fingerspelling letters with an exported fingerspell ONNX model.",
        epilog="Exit status: 0 all inputs predicted, 1 some inputs failed, 2 usage error.",
    )
    p.add_argument(
        "model", help="model.onnx, or an MLflow URI (models:/fingerspell-onnx@champion, runs:/...)"
    )
    p.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="image files, folders (recursive), CSVs, - for stdin"
    )
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_const", const="json", dest="output", help="one JSON document")
    fmt.add_argument("--csv", action="store_const", const="csv", dest="output", help="CSV rows")
    p.add_argument("--top-k", type=int, default=3, help="alternatives per input (default 3)")
    p.add_argument("--batch-size", type=int, default=256, help="images per onnxruntime call (default 256)")
    p.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads (default up to 2)")
    p.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="refuse larger images")
    p.add_argument(
        "--crop",
        choices=CROPS,
        default=DEFAULT_CROP,
        help="how a photo becomes the 28x28 input: auto finds the hand first (default), center takes "
        "the centre square",
    )
    p.add_argument(
        "--tta",
        action="store_true",
        help="average over 8 views of each photo (crops at 0-15%% margin around the hand, mirrored): "
        "more accurate on real photos, 8x the model runs",
    )
    p.add_argument(
        "--unsure-threshold",
        type=float,
        default=None,
        metavar="P",
        help="mark answers under probability P unsure (default: the model's own threshold)",
    )
    p.set_defaults(output="table")
    return p


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)  # noqa: T201 - CLI output


def _batches(items: Iterator[Item], size: int) -> Iterator[list[Item]]:
    batch: list[Item] = []
    for item in items:
        batch.append(item)
        if sum(i.pixels is not None for i in batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _row(item: Item, pred: Prediction) -> dict[str, Any]:
    return {"input": item.name, **pred.to_dict(), **({"expected": item.expected} if item.expected else {})}


class _Writer:
    """Streams table or CSV rows; collects JSON until the end."""

    def __init__(self, kind: str, out: TextIO, top_k: int, model: dict[str, Any]) -> None:
        self.kind, self.out, self.top_k, self.model = kind, out, top_k, model
        self.rows: list[dict[str, Any]] = []
        self.errors: list[dict[str, str]] = []
        self.csv = csv.writer(out) if kind == "csv" else None
        if self.csv:
            self.csv.writerow(["input", "letter", "probability", "unsure", "top_k", "expected"])
        elif kind == "table":
            out.write(f"{'input':<40} {'letter':<6} {'prob':>6}  top-{top_k}\n")

    def result(self, row: dict[str, Any]) -> None:
        tops = " ".join(f"{t['letter']}:{t['probability']:.3f}" for t in row["top_k"])
        if self.kind == "json":
            self.rows.append(row)
        elif self.csv:
            unsure = str(row["unsure"]).lower()
            self.csv.writerow(
                [
                    row["input"],
                    row["letter"],
                    f"{row['probability']:.6f}",
                    unsure,
                    tops,
                    row.get("expected", ""),
                ]
            )
        else:
            letter = row["letter"] + ("?" if row["unsure"] else "")
            name = row["input"] if len(row["input"]) <= 40 else "..." + row["input"][-37:]
            expected = f"  (expected {row['expected']})" if "expected" in row else ""
            self.out.write(f"{name:<40} {letter:<6} {row['probability']:>6.3f}  {tops}{expected}\n")

    def error(self, item: Item) -> None:
        self.errors.append({"input": item.name, "error": item.error or "unknown error"})
        _stderr(f"{COMMAND}: {item.error}")

    def close(self) -> None:
        if self.kind == "json":
            doc = {"model": self.model, "predictions": self.rows, "errors": self.errors}
            json.dump(doc, self.out, indent=2)
            self.out.write("\n")
        self.out.flush()


def run(settings: PredictSettings, out: TextIO) -> int:
    """Predict every input; returns the exit status."""
    from fingerspell.inference.model_source import resolve_model_path

    predictor = OnnxPredictor(
        resolve_model_path(settings.model),
        threads=settings.threads,
        unsure_threshold=settings.unsure_threshold,
    )
    model_info = {
        "path": settings.model,
        "crop": settings.crop,
        "tta": settings.tta,
        **predictor.metadata.to_dict(),
        "unsure_threshold": predictor.unsure_threshold,  # the model's own, or --unsure-threshold
    }
    top_k = min(settings.top_k, len(predictor.letters))  # a larger --top-k lists every letter
    writer = _Writer(settings.output, out, top_k, model_info)
    failed = 0
    for batch in _batches(
        expand(
            settings.inputs,
            settings.max_pixels,
            crop=settings.crop,
            tta=settings.tta,
            style=predictor.metadata.photo_style,
        ),
        settings.batch_size,
    ):
        preds = iter(predictor.predict_inputs([i.pixels for i in batch if i.pixels is not None], top_k))
        for item in batch:
            if item.pixels is None:
                failed += 1
                writer.error(item)
            else:
                writer.result(_row(item, next(preds)))
    writer.close()
    return EXIT_INPUT_FAILED if failed else EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point; never shows a traceback for a foreseeable fault."""
    quiet_bomb_warning()
    args = _parser().parse_args(argv)
    try:
        settings = PredictSettings(**vars(args))
    except ValidationError as err:
        first = err.errors()[0]
        _stderr(f"{COMMAND}: error: --{str(first['loc'][0]).replace('_', '-')}: {first['msg']}")
        return EXIT_USAGE
    if isinstance(sys.stdout, io.TextIOWrapper):
        # a file name that is not UTF-8 (or not ASCII, under an ASCII locale) prints escaped, not as a crash
        sys.stdout.reconfigure(errors="backslashreplace")
    try:
        return run(settings, sys.stdout)
    except (ModelError, FileNotFoundError) as err:
        _stderr(f"{COMMAND}: error: {str(err).splitlines()[0]}")
        return EXIT_USAGE
    except BrokenPipeError:  # `| head`: the reader left; not an error
        return EXIT_OK


def entry() -> None:
    """`[project.scripts]` target."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
