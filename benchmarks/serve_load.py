"""Load on `fingerspell-serve` vs a bare FastAPI + onnxruntime endpoint, side by side, on loopback.

32 concurrent keep-alive clients send single-image multipart requests for 30 s to each server
in turn (baseline, ours, baseline, ours when --rounds 2); each run is also capped in request
count, and every server is stopped afterwards. The baseline is the smallest honest server on
the same model: FastAPI `UploadFile`, Pillow decode + resize, one `session.run`, no limits,
validation, top-k or access log. Results (req/s, p50/p99 latency, errors, ratio to the
baseline) go to benchmarks/results/serve_load.json.
Goal on the 2-core dev machine: >= 1,000 req/s, p99 <= 25 ms, 0 errors.

The load comes from `wrk` (Debian package) when installed, else from an asyncio client in
this process; the servers are separate processes either way.

    python benchmarks/serve_load.py [--model models/model.onnx] [--duration 30] [--workers 2] [--threads 1]
"""

import argparse
import io
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve_load_client import LoadResult, run_asyncio_load, run_wrk_load

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "serve_load.json"
GOAL = {"req_per_s": 1000.0, "p99_ms": 25.0, "errors": 0}
BOUNDARY = "fingerspellbench"


def sample_image(kind: str) -> tuple[bytes, str | None]:
    """A test-split sample (synthetic without data) made to look like what users send.

    `jpeg`: a 640x480 webcam-sized JPEG (the page's webcam capture); `png`: a 200x200 PNG.
    """
    processed = REPO / "data" / "processed" / "test.npz"
    letter = None
    if processed.is_file():
        with np.load(processed) as split:
            pixels, label = split["images"][0, 0], int(split["labels"][0])
        meta = json.loads((processed.parent / "meta.json").read_text())
        letter = meta["letters"][label]
    else:
        pixels = np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.uint8)
    buf = io.BytesIO()
    if kind == "png":
        Image.fromarray(pixels, "L").resize((200, 200), Image.Resampling.BICUBIC).convert("RGB").save(
            buf, "PNG"
        )
    else:
        # the centre square the server crops is the sample itself
        frame = Image.new("RGB", (640, 480), (128, 128, 128))
        frame.paste(
            Image.fromarray(pixels, "L").resize((480, 480), Image.Resampling.BICUBIC).convert("RGB"), (80, 0)
        )
        frame.save(buf, "JPEG", quality=90)
    return buf.getvalue(), letter


def multipart_body(image: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="hand"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head + image + f"\r\n--{BOUNDARY}--\r\n".encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(cmd: list[str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """Start a server and wait for it to answer on loopback."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"serve_load: server failed to start:\n{log.read_text()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).raise_for_status()
            return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"serve_load: server did not answer within 60 s:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def server_command(kind: str, model: Path, port: int, workers: int, threads: int) -> list[str]:
    if kind == "baseline":
        return [sys.executable, str(REPO / "benchmarks" / "serve_baseline.py"), str(model), str(port), str(workers),
                str(threads)]  # fmt: skip
    return [sys.executable, "-m", "fingerspell.serve.cli", str(model), "--port", str(port), "--workers",
            str(workers), "--threads", str(threads)]  # fmt: skip


def server_cpu_s(proc: subprocess.Popen[bytes]) -> float | None:
    """CPU seconds used so far by a server and its worker processes (None without psutil).

    CPU per request barely moves when other programs share the machine, unlike req/s.
    """
    try:
        import psutil
    except ImportError:
        return None
    parent = psutil.Process(proc.pid)
    total = 0.0
    for p in [parent, *parent.children(recursive=True)]:
        times = p.cpu_times()
        total += times.user + times.system
    return total


def measure(
    kind: str, args: argparse.Namespace, body: bytes, letter: str | None, tmp: Path
) -> tuple[LoadResult, float | None]:
    port = free_port()
    proc = start(
        server_command(kind, args.model, port, args.workers, args.threads), port, tmp / f"{kind}.log"
    )
    try:
        url = f"http://127.0.0.1:{port}/predict"
        headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
        check = httpx.post(url, content=body, headers=headers, timeout=10)
        check.raise_for_status()
        got = check.json()["predictions"][0]["letter"]
        if letter is not None and got != letter:
            print(f"note: {kind} read the sample as {got}, its label is {letter}", file=sys.stderr)
        for _ in range(200):  # warm-up outside the measured window
            httpx.post(url, content=body, headers=headers)
        runner = run_wrk_load if args.tool == "wrk" else run_asyncio_load
        cpu_before = server_cpu_s(proc)
        result = runner(
            url, body, headers["content-type"], args.clients, args.duration, args.max_requests, tmp
        )
        cpu_after = server_cpu_s(proc)
        cpu_ms = None
        if cpu_before is not None and cpu_after is not None and result.requests:
            cpu_ms = round((cpu_after - cpu_before) * 1000 / result.requests, 3)
        return result, cpu_ms
    finally:
        stop(proc)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REPO / "models" / "model.onnx")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per run")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--max-requests", type=int, default=200_000, help="cap per run")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers (2 measured best on 2 cores)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads per worker")
    parser.add_argument("--rounds", type=int, default=1, help="baseline/ours pairs, alternating")
    parser.add_argument(
        "--image", choices=["jpeg", "png"], default="jpeg", help="640x480 JPEG or 200x200 PNG"
    )
    parser.add_argument("--tool", choices=["auto", "wrk", "asyncio"], default="auto")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.tool == "auto":
        args.tool = "wrk" if shutil.which("wrk") else "asyncio"
    if not args.model.is_file():
        raise SystemExit(
            f"serve_load: {args.model}: model not found; run 'dvc repro' first (or pass --model)"
        )
    return args


def main() -> None:
    args = parse_args()
    load_before = os.getloadavg()  # other programs on the machine skew req/s, not CPU per request
    image, letter = sample_image(args.image)
    body = multipart_body(image)
    runs: dict[str, list[LoadResult]] = {"baseline": [], "fingerspell-serve": []}
    cpu: dict[str, list[float | None]] = {"baseline": [], "fingerspell-serve": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for kind, key in (("baseline", "baseline"), ("ours", "fingerspell-serve")):
                result, cpu_ms = measure(kind, args, body, letter, Path(tmp))
                runs[key].append(result)
                cpu[key].append(cpu_ms)
                print(f"{key:>18}: {result.summary()}  server CPU {cpu_ms} ms/request")
    best = {key: max(results, key=lambda r: r.req_per_s) for key, results in runs.items()}
    ours, base = best["fingerspell-serve"], best["baseline"]
    report = {
        "benchmark": "serve_load",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_average_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
        },
        "setup": {
            "tool": args.tool,
            "clients": args.clients,
            "duration_s": args.duration,
            "max_requests": args.max_requests,
            "workers": args.workers,
            "threads": args.threads,
            "rounds": args.rounds,
            "image": args.image,
            "image_bytes": len(image),
            "model": str(args.model),
        },
        "runs": {
            key: [
                {**r.to_dict(), "server_cpu_ms_per_request": c}
                for r, c in zip(results, cpu[key], strict=True)
            ]
            for key, results in runs.items()
        },
        "best": {key: r.to_dict() for key, r in best.items()},
        "ratio_vs_baseline": {
            "req_per_s": round(ours.req_per_s / base.req_per_s, 3) if base.req_per_s else None,
            "p99_ms": round(ours.p99_ms / base.p99_ms, 3) if base.p99_ms else None,
        },
        "goal": GOAL,
        "goal_met": ours.req_per_s >= GOAL["req_per_s"]
        and ours.p99_ms <= GOAL["p99_ms"]
        and ours.errors == 0,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.output.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(report, indent=2) + "\n")
    tmp_out.replace(args.output)
    print(json.dumps(report["ratio_vs_baseline"]), "goal met" if report["goal_met"] else "goal NOT met")


if __name__ == "__main__":
    main()
