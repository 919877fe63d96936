"""`fingerspell-predict` as a separate process: what reaches the terminal for awkward names and sizes."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

CMD = [sys.executable, "-m", "fingerspell.inference.cli"]


def run(*args: str, encoding: str = "utf-8:strict") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": encoding}
    return subprocess.run(
        [*CMD, *args], capture_output=True, text=True, errors="replace", env=env, timeout=120, check=False
    )


def png(path: Path) -> Path:
    Image.new("L", (56, 56), 128).save(path, format="PNG")
    return path


@pytest.mark.parametrize("output", ["--csv", "--json", None])
def test_a_file_name_that_is_not_utf8_is_printed_escaped(
    tiny_onnx: Path, tmp_path: Path, output: str | None
) -> None:
    """Bytes that are not UTF-8 are legal in Linux file names; printing one used to end in a traceback."""
    folder = tmp_path / "photos"
    folder.mkdir()
    png(folder / os.fsdecode(b"bad\xff.png"))
    done = run(str(tiny_onnx), str(folder), *([output] if output else []))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "bad\\udcff.png" in done.stdout


def test_a_non_ascii_name_under_an_ascii_locale_is_printed_escaped(tiny_onnx: Path, tmp_path: Path) -> None:
    image = png(tmp_path / "ünï.png")
    done = run(str(tiny_onnx), str(image), "--csv", encoding="ascii:strict")
    assert done.returncode == 0, done.stderr
    assert "\\xfcn\\xef.png" in done.stdout


def test_max_pixels_above_what_pillow_decodes_is_a_usage_error(tiny_onnx: Path, tmp_path: Path) -> None:
    done = run(str(tiny_onnx), str(png(tmp_path / "a.png")), "--max-pixels", "250000000")
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("fingerspell-predict: error: --max-pixels: ")
    assert "89478485" in line


def test_an_image_over_pillows_own_limit_is_one_line_not_a_warning(tiny_onnx: Path, tmp_path: Path) -> None:
    """A 90 MP image is over Pillow's bomb-warning size: it must get our one line, not Pillow's two as well."""
    big = tmp_path / "big.png"
    buf = io.BytesIO()
    Image.new("1", (9500, 9500), 0).save(buf, format="PNG")  # 1-bit: a 90 MP image in a few kB
    big.write_bytes(buf.getvalue())
    done = run(str(tiny_onnx), str(big))
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line == (
        f"fingerspell-predict: {big}: image is 9500x9500 (90,250,000 pixels), over the limit of 40,000,000;"
        " resize it first"
    )
