"""Every image mode a phone, scanner or image tool may send reads as the same 8-bit grey picture.

Pillow's own `convert("L")` clips 16-bit and float grey to white or black, paints transparent
areas black and has no path from some modes; `decode_image` and `to_grey` must not.
"""

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from fingerspell.inference.images import ImageError, decode_image, standard_mode, to_grey


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
        standard_mode(Image.new("La", (4, 4)), "photo.png")
    assert str(err.value).startswith("photo.png: colour mode La cannot be read")
    assert "\n" not in str(err.value)


def test_exif_orientation_is_applied() -> None:
    img = Image.new("L", (40, 20), 0)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(img, "JPEG", exif=exif)
    assert decode_image(data, "photo").size == (20, 40)


@pytest.mark.parametrize("colour", [False, True])
def test_only_the_transparent_part_turns_white(colour: bool) -> None:
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4] = (255, 0, 0, 0)  # left: red, fully transparent
    rgba[:, 4:] = (0, 0, 0, 255)  # right: opaque black
    got = grey(encode(Image.fromarray(rgba, "RGBA")), colour)
    assert np.all(got[:, :4] == 255)
    assert np.all(got[:, 4:] == 0)


def test_a_16_bit_png_colour_key_turns_white() -> None:
    values = np.full((4, 8), 4 * 257, np.uint16)
    values[:, :2] = 1000  # the transparent grey level
    got = grey(encode(Image.fromarray(values), transparency=1000))
    assert np.all(got[:, :2] == 255)
    assert np.all(got[:, 2:] == 4)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (np.full((4, 4), 70_000, np.int32), 255),  # one value beyond 16 bits
        (np.full((4, 4), -5, np.int32), 0),
        (np.full((4, 4), -1.0, np.float32), 0),
        (np.full((4, 4), np.nan, np.float32), 0),
    ],
)
def test_constant_images_out_of_range_are_clipped_quietly(values: np.ndarray, expected: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0/0 once warned "invalid value encountered in divide"
        got = grey(encode(Image.fromarray(values), "TIFF"))
    assert np.all(got == expected)


def test_a_float_image_a_hair_over_one_is_a_0_1_image() -> None:
    values = GRADIENT.astype(np.float32) / 255 * 1.0005
    values[0, 0] = np.inf  # an infinity reads as the brightest finite value, not black
    got = grey(encode(Image.fromarray(values), "TIFF"))
    assert np.abs(got[1] - GRADIENT[1]).max() <= 1
    assert got[0, 0] == 255
