"""Every image mode a phone, scanner or image tool may send reads as the same 8-bit grey picture.

Pillow's own `convert("L")` clips 16-bit and float grey to white or black, paints transparent
areas black and has no path from some modes; `decode_image` and `to_grey` must not.
"""

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from fingerspell.inference.images import ImageError, decode_image, to_grey


def encode(img: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def grey(data: bytes, colour: bool = False) -> np.ndarray:
    return np.asarray(to_grey(decode_image(data, "photo", colour=colour)), dtype=np.int16)


GRADIENT = np.tile(np.arange(256, dtype=np.uint8), (8, 1))  # every grey level once per row


@pytest.mark.parametrize("colour", [False, True])
@pytest.mark.parametrize(
    ("label", "image"),
    [
        ("16-bit PNG", lambda: encode(Image.fromarray(GRADIENT.astype(np.uint16) * 257))),
        ("32-bit integer TIFF of 16-bit values", lambda: encode(Image.fromarray(GRADIENT.astype(np.int32) * 257), "TIFF")),
        ("32-bit integer TIFF of 8-bit values", lambda: encode(Image.fromarray(GRADIENT.astype(np.int32)), "TIFF")),
        ("float TIFF in 0-1", lambda: encode(Image.fromarray(GRADIENT.astype(np.float32) / 255), "TIFF")),
        ("float TIFF in 0-255", lambda: encode(Image.fromarray(GRADIENT.astype(np.float32)), "TIFF")),
    ],
)  # fmt: skip
def test_high_bit_depth_grey_keeps_its_grey_levels(label: str, image, colour: bool) -> None:  # type: ignore[no-untyped-def]
    got = grey(image(), colour)
    assert np.abs(got - GRADIENT).max() <= 1, label  # Pillow alone: 16-bit is ~all white, float ~all black


def test_a_high_depth_image_of_other_values_is_stretched_to_0_255() -> None:
    values = GRADIENT.astype(np.int32) * 100_000 - 5_000_000  # negative and beyond 16 bits
    got = grey(encode(Image.fromarray(values), "TIFF"))
    assert got.min() == 0
    assert got.max() == 255
    assert np.all(np.diff(got[0]) >= 0), "order of the grey levels is kept"


@pytest.mark.parametrize(
    ("label", "image"),
    [
        ("grey PNG with a colour key", lambda: encode(Image.new("L", (8, 8), 0), transparency=0)),
        ("RGB PNG with a colour key", lambda: encode(Image.new("RGB", (8, 8), (0, 0, 0)), transparency=(0, 0, 0))),
        ("RGBA, alpha 0", lambda: encode(Image.new("RGBA", (8, 8), (0, 0, 0, 0)))),
        ("grey + alpha, alpha 0", lambda: encode(Image.new("LA", (8, 8), (0, 0)))),
        ("palette with per-entry alpha (pngquant)", lambda: encode(Image.new("P", (8, 8), 0), transparency=b"\x00")),
    ],
)  # fmt: skip
@pytest.mark.parametrize("colour", [False, True])
def test_transparent_areas_become_white_without_a_warning(label: str, image, colour: bool) -> None:  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow warns for a palette's byte transparency under convert("RGB")
        got = grey(image(), colour)
    assert np.all(got == 255), label


def test_the_hand_finder_sees_the_composited_picture_too() -> None:
    """A transparent PNG decoded for `--crop auto` is RGB on white, not the hidden colours underneath."""
    hidden = np.zeros((8, 8, 4), np.uint8)
    hidden[..., 0] = 255  # red under alpha 0
    img = decode_image(encode(Image.fromarray(hidden, "RGBA")), "photo", colour=True)
    assert img.mode == "RGB"
    assert np.all(np.asarray(img) == 255)


@pytest.mark.parametrize("mode", ["LAB", "YCbCr", "CMYK"])
def test_colour_spaces_without_a_grey_conversion_are_read(mode: str) -> None:
    rgb = Image.fromarray(np.stack([GRADIENT] * 3, axis=-1), "RGB")
    fmt = "JPEG" if mode in ("YCbCr", "CMYK") else "TIFF"
    data = encode(rgb.convert(mode), fmt)
    got = grey(data)
    assert np.abs(got - GRADIENT).mean() < 4, mode  # colour-space round trips are approximate


def test_a_mode_with_no_conversion_is_one_image_error_naming_the_file() -> None:
    with pytest.raises(ImageError) as err:
        to_grey(Image.new("La", (4, 4)))
    assert "colour mode La" in str(err.value)
    assert "\n" not in str(err.value)


def test_exif_orientation_is_applied() -> None:
    img = Image.new("L", (40, 20), 0)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(img, "JPEG", exif=exif)
    assert decode_image(data, "photo").size == (20, 40)
