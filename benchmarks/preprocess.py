"""The whole preprocess stage vs a plain `pandas.read_csv` of the same two CSVs, side by side.

Both sides start from the same zip: the baseline decompresses and parses the two CSVs
with pandas' defaults and stops there; preprocess also validates, fingerprints, checks
duplicates, splits and writes `processed/` (to a temp folder). Runs alternate A, B, A, B
so drift on a shared machine hits both alike; the medians and their ratio go to
benchmarks/results/preprocess.json. Goal: preprocess <= 3 s on the 2-core dev machine.

    python benchmarks/preprocess.py [--source ../shared/data/sign-mnist/sign-language-mnist.zip] [--repeats 5]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from fingerspell.data.archive import SPLIT_FILES, read_split_csvs
from fingerspell.data.csv_parser import parse_csv
from fingerspell.data.labels import labels_to_indices
from fingerspell.data.preprocess import _meta, preprocess  # _meta: timed as its own phase
from fingerspell.data.processed import write_processed
from fingerspell.data.split import stratified_split
from fingerspell.data.validate import duplicate_report, fingerprint

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 3.0
DEFAULT_SOURCE = Path(
    os.environ.get(
        "FINGERSPELL_MIRROR", REPO.parent / "shared" / "data" / "sign-mnist" / "sign-language-mnist.zip"
    )
)


def pandas_baseline(source: Path) -> int:
    """Decompress and parse both CSVs from the zip with `pandas.read_csv` defaults; return the rows."""
    rows = 0
    with zipfile.ZipFile(source) as archive:
        members = {Path(info.filename).name: info for info in archive.infolist()}
        for filename in SPLIT_FILES.values():
            with archive.open(members[filename]) as handle:
                rows += len(pd.read_csv(handle))
    return rows


def full_preprocess(source: Path, fingerprint_pin: str, scratch: Path) -> int:
    """The stage itself, as `dvc repro` runs it, writing into a scratch `processed/`."""
    meta = preprocess(
        source, scratch / "processed", val_fraction=0.1, split_seed=42, expected_fingerprint=fingerprint_pin
    )
    return sum(meta["rows"].values())


def phases(source: Path, scratch: Path) -> dict[str, float]:
    """Seconds per phase of one preprocess, to show where the time goes (not the headline)."""
    out: dict[str, float] = {}
    start = time.perf_counter()

    def mark(name: str) -> None:
        nonlocal start
        now = time.perf_counter()
        out[name] = round(now - start, 4)
        start = now

    raw = read_split_csvs(source)
    mark("read_zip")
    parsed = {split: parse_csv(data, name) for split, (name, data) in raw.items()}
    mark("parse_validate")
    fingerprint(parsed)
    mark("fingerprint")
    duplicate_report(parsed)
    mark("duplicates")
    y = labels_to_indices(parsed["train"].labels)
    train_idx, val_idx = stratified_split(y, 0.1, 42)
    x = parsed["train"].images[:, None]
    arrays = {
        "train": (np.ascontiguousarray(x[train_idx]), y[train_idx]),
        "val": (np.ascontiguousarray(x[val_idx]), y[val_idx]),
        "test": (parsed["test"].images[:, None], labels_to_indices(parsed["test"].labels)),
    }
    mark("split")
    meta = _meta(arrays, 0.1, 42, "", False, {}, str(source))
    mark("meta_stats")
    write_processed(scratch / "phases", arrays, meta)
    mark("write")
    return out


def timed(func: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    rows = func()
    return time.perf_counter() - start, rows


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_json_atomic(data: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="the data set zip (a mirror)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "preprocess.json")
    args = parser.parse_args()
    if not args.source.is_file():
        fallback = REPO / "data" / "raw" / "sign-language-mnist.zip"
        if not fallback.is_file():
            print(
                f"preprocess benchmark: error: no data set at {args.source}; pass --source or run 'dvc repro'"
            )
            return 1
        args.source = fallback
    pin = yaml.safe_load((REPO / "conf" / "data" / "sign_mnist.yaml").read_text())["fingerprint"]
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="fingerspell-bench-") as tmp:
        scratch = Path(tmp)
        # one untimed round of each warms the page cache and imports
        full_preprocess(args.source, pin, scratch)
        pandas_baseline(args.source)
        runs: dict[str, list[float]] = {"preprocess": [], "pandas_read_csv": []}
        rows: dict[str, int] = {}
        for _ in range(args.repeats):
            for name, func in (
                ("preprocess", lambda: full_preprocess(args.source, pin, scratch)),
                ("pandas_read_csv", lambda: pandas_baseline(args.source)),
            ):
                seconds, rows[name] = timed(func)
                runs[name].append(round(seconds, 4))
        breakdown = phases(args.source, scratch)
    medians = {name: statistics.median(values) for name, values in runs.items()}
    ratio = medians["preprocess"] / medians["pandas_read_csv"]
    result = {
        "benchmark": "preprocess",
        "what": "full preprocess (zip -> parse -> validate -> fingerprint -> split -> write) "
        "vs pandas.read_csv of the same two CSVs from the same zip",
        "source": str(args.source),
        "repeats": args.repeats,
        "seconds_median": {name: round(value, 4) for name, value in medians.items()},
        "seconds_all": runs,
        "ratio_preprocess_to_pandas": round(ratio, 3),
        "rows": rows,
        "preprocess_phases_seconds": breakdown,
        "goal_seconds": GOAL_S,
        "meets_goal": medians["preprocess"] <= GOAL_S,
        "machine": {
            "cpu_model": cpu_model(),
            "cores": os.cpu_count(),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in os.getloadavg()],
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "platform": platform.platform(),
        },
    }
    write_json_atomic(result, args.out)
    print(
        f"preprocess {medians['preprocess']:.2f} s vs pandas.read_csv {medians['pandas_read_csv']:.2f} s "
        f"(x{ratio:.2f}; goal <= {GOAL_S:.0f} s: {'met' if result['meets_goal'] else 'NOT met'}) -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
