"""Load generators for serve_load.py: `wrk` with a Lua script, or an asyncio keep-alive client.

Both run a fixed number of concurrent connections for a fixed time, stop early at a request
cap, and report req/s, p50/p99 latency and errors (transport errors and non-200 answers).
"""

import asyncio
import json
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np


@dataclass(frozen=True)
class LoadResult:
    """One load run."""

    tool: str
    requests: int
    duration_s: float
    req_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int

    def summary(self) -> str:
        return (
            f"{self.req_per_s:8.0f} req/s  p50 {self.p50_ms:5.1f} ms  p99 {self.p99_ms:5.1f} ms  "
            f"errors {self.errors}  ({self.requests} requests in {self.duration_s:.1f} s, {self.tool})"
        )

    def to_dict(self) -> dict[str, float | int | str]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "%(content_type)s"
local f = io.open("%(body_path)s", "rb")
wrk.body = f:read("*a")
f:close()
local count = 0
function response(status, headers, body)
  count = count + 1
  if count >= %(max_requests)d then wrk.thread:stop() end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %%d, "duration_us": %%d, "errors": %%d, "p50_us": %%d, "p99_us": %%d, "max_us": %%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


def run_wrk_load(
    url: str, body: bytes, content_type: str, clients: int, duration: float, max_requests: int, tmp: Path
) -> LoadResult:
    """`wrk -t1 -c<clients>`: one load thread leaves the other core to the server."""
    body_path, script = tmp / "body.bin", tmp / "post.lua"
    body_path.write_bytes(body)
    script.write_text(
        WRK_SCRIPT % {"content_type": content_type, "body_path": body_path, "max_requests": max_requests}
    )
    cmd = ["wrk", "-t1", f"-c{clients}", f"-d{int(duration)}s", "--timeout", "5s", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    raw = json.loads(line.removeprefix("RESULT "))
    seconds = raw["duration_us"] / 1e6
    return LoadResult(
        tool="wrk",
        requests=raw["requests"],
        duration_s=seconds,
        req_per_s=raw["requests"] / seconds,
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        max_ms=raw["max_us"] / 1000,
        errors=raw["errors"],
    )


async def _client(
    host: str,
    port: int,
    request: bytes,
    deadline: float,
    cap: list[int],
    latencies: list[float],
    errors: list[int],
) -> None:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        errors[0] += 1
        return
    try:
        while time.perf_counter() < deadline and cap[0] > 0:
            cap[0] -= 1
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if not head.startswith(b"HTTP/1.1 200"):
                errors[0] += 1
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
        errors[0] += 1
    finally:
        writer.close()


def run_asyncio_load(
    url: str, body: bytes, content_type: str, clients: int, duration: float, max_requests: int, tmp: Path
) -> LoadResult:
    """Python fallback when wrk is missing: raw HTTP/1.1 keep-alive on asyncio (uvloop if present)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors, cap = [0], [max_requests]

    async def load() -> float:
        start = time.perf_counter()
        deadline = start + duration
        await asyncio.gather(
            *(_client(host, port, request, deadline, cap, latencies, errors) for _ in range(clients))
        )
        return time.perf_counter() - start

    try:
        import uvloop

        seconds = uvloop.run(load())
    except ImportError:
        seconds = asyncio.run(load())
    lat_ms = np.array(latencies) * 1000 if latencies else np.zeros(1)
    return LoadResult(
        tool="asyncio",
        requests=len(latencies),
        duration_s=seconds,
        req_per_s=len(latencies) / seconds,
        p50_ms=float(np.percentile(lat_ms, 50)),
        p99_ms=float(np.percentile(lat_ms, 99)),
        max_ms=float(lat_ms.max()),
        errors=errors[0],
    )
