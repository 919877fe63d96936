"""`fingerspell-serve --port/--host` faults, through the real command: one line, never uvicorn's log block."""

import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest

from fingerspell.serve import cli


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `fingerspell-serve`; a bad option must end it long before the timeout."""
    return subprocess.run(
        [sys.executable, "-m", "fingerspell.serve.cli", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("port", ["99999", "65536", "-1", "0", "eighty"])
def test_a_port_outside_1_65535_is_a_usage_error_in_one_line(port: str, tiny_onnx: Path) -> None:
    done = serve(str(tiny_onnx), "--port", port)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("fingerspell-serve: error: argument --port: "), line
    assert "1-65535" in line


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another server is listening on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield int(other.getsockname()[1])


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_port_in_use_is_one_line_and_exit_1(workers: str, taken_port: int, tiny_onnx: Path) -> None:
    done = serve(str(tiny_onnx), "--port", str(taken_port), "--workers", workers)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        f"fingerspell-serve: error: port {taken_port} is in use on 127.0.0.1; pick another with --port"
    ]


def test_a_host_that_is_not_this_machine_is_one_line(tiny_onnx: Path) -> None:
    done = serve(str(tiny_onnx), "--host", "nohost.invalid", "--port", "8000")
    assert done.returncode == 1, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("fingerspell-serve: error: --host nohost.invalid: "), line


def test_a_free_port_passes_the_check() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    cli.check_can_bind("127.0.0.1", port)  # raises on a port it cannot bind


@pytest.mark.parametrize(("host", "workers"), [("", 1), ("::", 2), ("127.0.0.1", 2)])
def test_the_check_binds_as_uvicorn_will(host: str, workers: int) -> None:
    """ "" means every interface to asyncio (one worker), and with several workers uvicorn binds
    one dual-stack socket for "::": a port held on IPv4 0.0.0.0 is busy for both."""
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.bind(("0.0.0.0", 0))  # noqa: S104 - the point: a port held on every IPv4 address
        held.listen()
        port = int(held.getsockname()[1])
        with pytest.raises(ValueError, match=f"^port {port} is in use on "):
            cli.check_can_bind(host, port, workers)


def test_a_host_name_too_long_to_encode_is_one_line() -> None:
    with pytest.raises(ValueError, match=r"^--host a+\.com: not an address this machine can listen on"):
        cli.check_can_bind("a" * 70 + ".com", 8000)


def test_help_names_the_model_the_export_registers() -> None:
    from fingerspell.export.stage import ExportSettings

    (registered,) = [f.default for f in fields(ExportSettings) if f.name == "registered_name"]
    done = serve("--help")
    assert f"models:/{registered}@champion" in done.stdout.replace("\n", "").replace(" ", "")
