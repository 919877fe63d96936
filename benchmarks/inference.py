"""Inference speed side by side: torch eager vs onnxruntime fp32 vs onnxruntime int8 (same net).

One process, one net: the trained checkpoint (`models/checkpoints/best.ckpt`) when present,
else the classic CNN with random weights (speed does not depend on the weights). It is
exported with the project's export code (fp32 + static QDQ int8 calibrated on train
images) into a temp folder. Rounds alternate the runtimes so drift on a shared machine hits
all alike; per runtime the medians over rounds of batch-1 p50/p99 latency and batch-256
throughput go to benchmarks/results/inference.json, with the ratios against the goals:
ORT fp32 >= 2.5x torch at batch 256 and >= 3x at batch 1; int8 >= 1.5x ORT fp32.
ORT defaults (untuned session) run too, to show what tuning buys.
The photo path is timed too: JPEG bytes (640x480) -> decode -> crop (center, or the hand
finder's auto, or auto with the 8 `--tta` views) -> 28x28 -> ORT fp32, so the finder's and the
views' costs show as ratios.

    python benchmarks/inference.py [--checkpoint PATH | --random] [--rounds 5] [--threads 2]
"""

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from fingerspell.evaluation.timing import latency_ms, throughput
from fingerspell.export.metadata import build_metadata
from fingerspell.export.onnx_export import export_onnx
from fingerspell.export.quantize import calibration_sample, quantize_int8
from fingerspell.export.wrapper import OnnxWrapper

REPO = Path(__file__).resolve().parents[1]
GOALS = {"ort_fp32_vs_torch_batch256": 2.5, "ort_fp32_vs_torch_batch1": 3.0, "int8_vs_fp32_batch256": 1.5}
LETTERS = [chr(c) for c in range(ord("A"), ord("Z")) if chr(c) not in "JZ"]


def load_net(checkpoint: Path | None) -> tuple[torch.nn.Module, float, float, str]:
    """The trained net (with its normalisation) or a random-weight classic CNN."""
    if checkpoint is not None and checkpoint.is_file():
        from fingerspell.export.source import load_checkpoint

        module = load_checkpoint(checkpoint)
        return module.net.eval(), float(module.hparams["mean"]), float(module.hparams["std"]), str(checkpoint)
    from fingerspell.models.cnn import ClassicCNN

    torch.manual_seed(0)
    net = ClassicCNN(in_chans=1, num_classes=24, conv_drop_rate=0.2, drop_rate=0.3, image_size=28)
    return net.eval(), 0.5, 0.2, "classic CNN, random weights"


def images(processed: Path) -> tuple[np.ndarray, np.ndarray]:
    """(calibration sample from train, timing sample from test) raw 0-255, or random pixels."""
    try:
        from fingerspell.data.processed import load_split

        train, _ = load_split(processed, "train")
        test, _ = load_split(processed, "test")
        return calibration_sample(train, 1024, 0), test[:512].astype(np.float32)
    except ValueError:
        rng = np.random.default_rng(0)
        return rng.uniform(0, 255, (1024, 1, 28, 28)).astype(np.float32), rng.uniform(
            0, 255, (512, 1, 28, 28)
        ).astype(np.float32)


def tuned_options(threads: int) -> ort.SessionOptions:
    """The session fingerspell runs: all graph optimisations, `threads` intra-op threads, spinning on."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1")
    return opts


def ort_fn(path: Path, opts: ort.SessionOptions) -> Callable[[np.ndarray], object]:
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda x: session.run(["probabilities"], {"image": x})


def torch_fn(wrapper: OnnxWrapper) -> Callable[[np.ndarray], object]:
    def run(x: np.ndarray) -> object:
        with torch.inference_mode():
            return wrapper(torch.from_numpy(x))[1]

    return run


def photo_jpegs(n: int = 8) -> list[bytes]:
    """640x480 JPEG photos of a drawn room with a skin-coloured hand-sized shape, like a webcam frame."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        img = Image.new("RGB", (640, 480), tuple(int(v) for v in rng.integers(60, 200, 3)))
        draw = ImageDraw.Draw(img)
        for _ in range(6):
            x, y = (int(v) for v in rng.integers(0, 600, 2))
            draw.rectangle([x, y, x + 80, y + 60], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
        cx, cy = (int(v) for v in rng.integers(200, 440, 2))
        draw.ellipse([cx - 90, cy - 60, cx + 90, cy + 110], fill=(214, 160, 130))
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def photo_latency_ms(model: Path, crop: str, photos: list[bytes], runs: int) -> dict[str, float]:
    """p50/p99 ms of one photo through the product's path: bytes -> crop -> 28x28 -> ORT fp32.

    `crop` "auto+tta" is the finder plus the 8 test-time views (`--tta`), run as one batch of 8;
    "+green" reads the photo with `grey_weights=[0,1,0]` (a colour decode even for the centre crop),
    "+dim" with `dim_background=0.8` as well (the finder's foreground mask cut for every view).
    """
    from fingerspell.inference.images import image_bytes_to_input
    from fingerspell.inference.reading import LUMA, PhotoStyle

    session = ort.InferenceSession(str(model), tuned_options(1), providers=["CPUExecutionProvider"])
    dim = 0.8 if crop.endswith("+dim") else 0.0
    crop = crop.removesuffix("+dim")
    grey = (0.0, 1.0, 0.0) if crop.endswith("+green") or dim else LUMA
    crop = crop.removesuffix("+green")
    style = PhotoStyle(grey, dim)
    tta = crop.endswith("+tta")
    crop = crop.removesuffix("+tta")
    times = []
    for i in range(runs + 10):
        start = time.perf_counter_ns()
        x = image_bytes_to_input(photos[i % len(photos)], "photo", crop=crop, tta=tta, style=style)  # type: ignore[arg-type]
        probs = session.run(["probabilities"], {"image": x[:, None] if tta else x[None, None]})[0]
        probs.mean(axis=0)
        if i >= 10:
            times.append((time.perf_counter_ns() - start) / 1e6)
    return {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=REPO / "models" / "checkpoints" / "best.ckpt")
    parser.add_argument(
        "--random", action="store_true", help="random-weight classic CNN even if a checkpoint exists"
    )
    parser.add_argument("--processed", type=Path, default=REPO / "data" / "processed")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--latency-runs", type=int, default=500)
    parser.add_argument("--throughput-runs", type=int, default=20)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "inference.json")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    net, mean, std, what = load_net(None if args.random else args.checkpoint)
    wrapper = OnnxWrapper(net, mean, std).eval()
    calib, sample = images(args.processed)
    with tempfile.TemporaryDirectory(prefix="fingerspell-bench-") as tmp:
        fp32, int8 = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        export_onnx(wrapper, fp32, build_metadata(LETTERS, mean, std, None, None, 18), 18)
        quantize_int8(
            fp32, int8, calib, ("Conv", "Gemm", "MatMul", "Relu", "MaxPool", "Add", "Reshape", "Flatten")
        )
        runtimes = {
            "torch_eager": torch_fn(wrapper),
            "ort_fp32_default": ort_fn(fp32, ort.SessionOptions()),
            "ort_fp32": ort_fn(fp32, tuned_options(args.threads)),
            "ort_int8": ort_fn(int8, tuned_options(args.threads)),
        }
        rounds: dict[str, list[dict[str, float]]] = {name: [] for name in runtimes}
        for r in range(args.rounds):
            for name, fn in runtimes.items():
                lat = latency_ms(fn, sample, args.latency_runs)
                thr = throughput(fn, sample, 256, args.throughput_runs)
                rounds[name].append({"p50": lat["p50_ms"], "p99": lat["p99_ms"], "ips": thr["images_per_s"]})
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
        photos = photo_jpegs()
        crops = (
            "center", "center+green", "auto", "auto+green", "auto+dim", "auto+tta", "auto+tta+green", "auto+tta+dim"
        )  # fmt: skip
        photo_rounds: dict[str, list[dict[str, float]]] = {crop: [] for crop in crops}
        for _ in range(args.rounds):
            for crop in photo_rounds:
                photo_rounds[crop].append(photo_latency_ms(fp32, crop, photos, args.latency_runs // 5))

    results = {
        name: {
            "batch1_p50_ms": round(statistics.median(x["p50"] for x in rs), 4),
            "batch1_p99_ms": round(statistics.median(x["p99"] for x in rs), 4),
            "batch256_images_per_s": round(statistics.median(x["ips"] for x in rs), 1),
        }
        for name, rs in rounds.items()
    }
    photo = {
        f"crop_{crop}": {k: round(statistics.median(x[k] for x in rs), 3) for k in ("p50_ms", "p99_ms")}
        for crop, rs in photo_rounds.items()
    }
    t, f, q = results["torch_eager"], results["ort_fp32"], results["ort_int8"]
    ratios = {
        "ort_fp32_vs_torch_batch256": round(f["batch256_images_per_s"] / t["batch256_images_per_s"], 2),
        "ort_fp32_vs_torch_batch1": round(t["batch1_p50_ms"] / f["batch1_p50_ms"], 2),
        "int8_vs_fp32_batch256": round(q["batch256_images_per_s"] / f["batch256_images_per_s"], 2),
        "int8_vs_fp32_batch1": round(f["batch1_p50_ms"] / q["batch1_p50_ms"], 2),
        "photo_auto_vs_center_p50": round(photo["crop_auto"]["p50_ms"] / photo["crop_center"]["p50_ms"], 2),
        "photo_tta_vs_auto_p50": round(photo["crop_auto+tta"]["p50_ms"] / photo["crop_auto"]["p50_ms"], 2),
        "photo_green_vs_luma_center_p50": round(
            photo["crop_center+green"]["p50_ms"] / photo["crop_center"]["p50_ms"], 2
        ),
        "photo_green_vs_luma_auto_p50": round(
            photo["crop_auto+green"]["p50_ms"] / photo["crop_auto"]["p50_ms"], 2
        ),
        "photo_dim_vs_green_auto_p50": round(
            photo["crop_auto+dim"]["p50_ms"] / photo["crop_auto+green"]["p50_ms"], 2
        ),
        "photo_dim_vs_green_tta_p50": round(
            photo["crop_auto+tta+dim"]["p50_ms"] / photo["crop_auto+tta+green"]["p50_ms"], 2
        ),
        "ort_tuned_vs_default_batch256": round(
            f["batch256_images_per_s"] / results["ort_fp32_default"]["batch256_images_per_s"], 2
        ),
    }
    report = {
        "model": what,
        "threads": args.threads,
        "rounds": args.rounds,
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "versions": {"torch": torch.__version__, "onnxruntime": ort.__version__},
        "results": results,
        "photo_640x480_jpeg": photo,
        "ratios": ratios,
        "goals": {k: {"goal": v, "met": ratios[k] >= v} for k, v in GOALS.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(report, indent=2) + "\n")
    tmp_out.replace(args.out)
    print("| runtime | batch-1 p50 (ms) | batch-1 p99 (ms) | batch-256 (img/s) |\n|---|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['batch1_p50_ms']:.3f} | {r['batch1_p99_ms']:.3f} | {r['batch256_images_per_s']:,.0f} |"
        )
    for crop, r in photo.items():
        print(f"photo 640x480 JPEG, {crop}: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms")
    print(json.dumps(ratios), json.dumps(report["goals"]))


if __name__ == "__main__":
    main()
