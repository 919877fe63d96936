"""Image bytes -> the 28x28 grey array the model takes: the one path for CLI, evaluate and service.

Only numpy and Pillow: serving must not need torch.
"""

import io
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fingerspell.inference.handfinder import (
    MARGIN,
    Box,
    find_hand,
    find_hand_and_mask,
    hand_crop,
    square_around,
)
from fingerspell.inference.reading import LUMA, PLAIN, GreyWeights, PhotoStyle

Crop = Literal["center", "auto"]
CROPS: tuple[Crop, ...] = ("center", "auto")  # centre square, or the hand finder's square
DEFAULT_CROP: Crop = "auto"  # measured: +1.6 points on real photos, no loss on tight crops (README)
DEFAULT_MAX_PIXELS = 40_000_000  # a 40 MP photo; anything larger is refused, not decoded
# Pillow refuses images over twice this in `Image.open`, before our own check can run, so it is
# the most `max_pixels` may allow (about 89 MP); see also `quiet_bomb_warning`.
PILLOW_MAX_PIXELS: int = Image.MAX_IMAGE_PIXELS or 89_478_485
HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")  # 16/32-bit integer and float grey
MODEL_SIZE = 28
# Test-time views (`--tta`): the crop at 0/5/10/15% margin around the hand instead of 15% alone,
# each also mirrored; the model's probabilities are averaged over the 8. Chosen on the real-hands
# dev set with three `real_hands` models: +2.9 points on hand boxes, +1.3 through the finder.
VIEW_MARGINS = (0.0, 0.05, 0.10, 0.15)


class ImageError(ValueError):
    """An input that cannot be turned into a model input; the message is one line for the user."""


def read_image_file(path: Path, max_pixels: int = DEFAULT_MAX_PIXELS, colour: bool = False) -> Image.Image:
    """Open an image file by path, with errors that name the file; `colour` keeps colour for the hand finder."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError as err:
        raise ImageError(f"{path}: no such file") from err
    except IsADirectoryError as err:
        raise ImageError(f"{path}: is a folder, not an image") from err
    except PermissionError as err:
        raise ImageError(f"{path}: not readable (permission denied)") from err
    return decode_image(data, str(path), max_pixels, colour)


def decode_image(
    data: bytes, name: str, max_pixels: int = DEFAULT_MAX_PIXELS, colour: bool = False
) -> Image.Image:
    """Decode image bytes (PNG, JPEG, BMP, WebP, GIF first frame, ...), honouring EXIF orientation.

    JPEGs decode at reduced scale, in grey unless `colour` (the hand finder needs colour). The
    result is always 8-bit 'L' or 'RGB' (see `standard_mode`).

    Raises:
        ImageError: empty, not an image, truncated, over `max_pixels`, or a colour mode with no
            conversion to RGB.
    """
    if not data:
        raise ImageError(f"{name}: empty file, expected an image")
    try:
        img = Image.open(io.BytesIO(data))
        width, height = img.size
        if width * height > max_pixels:
            raise ImageError(
                f"{name}: image is {width}x{height} ({width * height:,} pixels), over the limit of "
                f"{max_pixels:,}; resize it first"
            )
        img.seek(0)  # first frame of an animation
        if img.format == "JPEG":
            # decode at reduced scale (luma only unless colour is needed): much faster
            img.draft("RGB" if colour else "L", (MODEL_SIZE * 8, MODEL_SIZE * 8))
        img.load()
        return standard_mode(ImageOps.exif_transpose(img) or img, name)
    except UnidentifiedImageError as err:
        raise ImageError(f"{name}: not an image Pillow can read (PNG, JPEG, BMP, WebP, GIF, ...)") from err
    except Image.DecompressionBombError as err:
        raise ImageError(f"{name}: image too large to decode safely; resize it first") from err
    except (OSError, SyntaxError, ValueError) as err:
        if isinstance(err, ImageError):
            raise
        raise ImageError(f"{name}: image data is truncated or corrupt ({err})") from err


def _to_8bit(values: np.ndarray, mode: str, sixteen_bit: bool = False) -> np.ndarray:
    """16/32-bit or float grey levels -> uint8 0-255, by the range the values were stored in.

    16-bit files span 0-65535 (`sixteen_bit`: a PNG, which Pillow before 10.x opens as 'I');
    float files 0-1 (or 0-255); an 'I' image holding 8-bit values (some TIFF writers) keeps them;
    anything else is stretched from its own min to max. NaN reads as 0, infinities as the
    finite extremes.
    """
    x = values.astype(np.float64)
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros(x.shape, np.uint8)
    lo, hi = float(x[finite].min()), float(x[finite].max())
    x = np.nan_to_num(x, nan=0.0, posinf=hi, neginf=lo)
    if mode.startswith("I;16") or sixteen_bit:
        x = x / 257
    elif mode == "F" and lo >= 0 and hi <= 1 + 1e-3:  # float rounding can end a 0-1 image at 1.0001
        x = x * 255
    elif lo >= 0 and hi <= 255:
        pass
    elif lo >= 0 and hi <= 65535:
        x = x / 257
    elif hi > lo:
        x = (x - lo) / (hi - lo) * 255
    # else: one value beyond 0-65535 everywhere: clipped to black or white below
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def _high_depth(img: Image.Image) -> Image.Image:
    """A 16/32-bit or float grey image as 8-bit, its colour-key transparency (PNG tRNS) on white."""
    values = np.asarray(img)
    grey = _to_8bit(values, img.mode, sixteen_bit=img.format == "PNG")
    key = img.info.get("transparency")
    if isinstance(key, int | float):
        grey = np.where(values == key, np.uint8(255), grey)
    return Image.fromarray(grey, "L")


def quiet_bomb_warning() -> None:
    """Silence Pillow's decompression-bomb warning, for the commands' own processes only.

    `max_pixels` refuses such an image with one line of its own; the warning's two lines before
    it would only repeat that. Called by the entry points, not on import: a library user's other
    images keep Pillow's warning.
    """
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def standard_mode(img: Image.Image, name: str = "image") -> Image.Image:
    """The image as 8-bit 'L' or 'RGB', transparent areas composited on white.

    Why not Pillow's `convert` alone: it clips 16-bit and float grey to white or black, turns
    transparent areas black (a colour-key PNG's too) and has no path from LAB to grey, and
    phones, scanners and image tools send all of these.

    Raises:
        ImageError: a mode with no conversion to RGB (premultiplied 'La', which no file holds).
    """
    if img.mode in HIGH_DEPTH_MODES:
        return _high_depth(img)
    if img.mode in ("L", "RGB") and "transparency" not in img.info:
        return img
    try:
        if img.has_transparency_data:
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return img.convert("L" if img.mode == "1" else "RGB")
    except ValueError as err:
        raise ImageError(
            f"{name}: colour mode {img.mode} cannot be read; save it as an 8-bit grey or RGB PNG or JPEG"
        ) from err


def needs_colour(crop: Crop, style: PhotoStyle = PLAIN) -> bool:
    """Decode in colour: the hand finder needs it, and so do grey weights other than a JPEG's luma."""
    return crop == "auto" or tuple(style.grey_weights) != LUMA


def to_grey(img: Image.Image, grey: GreyWeights | None = None) -> Image.Image:
    """Grey ('L'), from any mode `standard_mode` reads; transparent areas become white, not black.

    `grey` weighs a colour image's red, green and blue (the model's `grey_weights`); None is luma.
    """
    img = standard_mode(img)
    if grey is None or tuple(grey) == LUMA or img.mode == "L":
        return img.convert("L")
    return img.convert("L", (*grey, 0.0))


def center_square(width: int, height: int) -> Box:
    """The largest centred square."""
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def crop_box(img: Image.Image, crop: Crop = DEFAULT_CROP) -> Box:
    """The square the model sees: the centre square, or where the hand finder puts the hand."""
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
    return find_hand(img) if crop == "auto" else center_square(*img.size)


def dim_background(
    view: np.ndarray, mask: np.ndarray, box: Box, image_size: tuple[int, int], amount: float
) -> np.ndarray:
    """Move the pixels outside the finder's hand `amount` of the way to the view's mean grey.

    `mask` is the finder's foreground at its working size over the whole photo; the part under
    `box` is resized like the view, so its edge is soft. The room around the hand is what
    Sign-MNIST crops never show: flattening most of it reads real photos better for models that
    standardise their input (README).
    """
    width, height = image_size
    scale_x, scale_y = mask.shape[1] / width, mask.shape[0] / height
    left, top, right, bottom = box
    inside = Image.fromarray(mask.astype(np.float32), "F").resize(
        view.shape[::-1],
        Image.Resampling.BILINEAR,
        box=(left * scale_x, top * scale_y, right * scale_x, bottom * scale_y),
    )
    outside = 1.0 - np.clip(np.asarray(inside, np.float32), 0.0, 1.0)
    return (view - amount * outside * (view - view.mean())).astype(np.float32)


def _grey_views(
    img: Image.Image, boxes: list[Box], size: int, style: PhotoStyle, mask: np.ndarray | None
) -> list[np.ndarray]:
    small = to_grey(img, style.grey_weights)
    views = []
    for b in boxes:
        view = np.asarray(
            small.resize((size, size), Image.Resampling.LANCZOS, box=b, reducing_gap=3.0), np.float32
        )
        if mask is not None and style.dim_background > 0:
            view = dim_background(view, mask, b, img.size, style.dim_background)
        views.append(view)
    return views


def to_model_input(
    img: Image.Image,
    box: Box | None = None,
    size: int = MODEL_SIZE,
    crop: Crop = DEFAULT_CROP,
    style: PhotoStyle = PLAIN,
) -> np.ndarray:
    """Crop to `box` (default: by `crop`), grey, resize with antialiasing -> float32 (size, size) 0-255.

    `style` is how the model wants photos read (its `grey_weights`; `dim_background` where the
    hand finder found a hand).
    """
    mask = None
    if box is None and crop == "auto":  # the finder's box, and its mask for `dim_background`
        hand, mask = find_hand_and_mask(img)
        box = hand_crop(hand, *img.size)
    return _grey_views(img, [box or crop_box(img, crop)], size, style, mask)[0]


def view_boxes(box: Box, margins: tuple[float, ...] = VIEW_MARGINS) -> list[Box]:
    """Squares sharing `box`'s centre whose margins around the hand are `margins` (box has MARGIN).

    For a crop with no hand box behind it (the centre square). Each is no larger than `box`, so
    it stays inside the image wherever `box` does.
    """
    left, top, right, bottom = box
    cx, cy, side = (left + right) / 2, (top + bottom) / 2, right - left
    boxes = []
    for margin in margins:
        half = side * (1 + 2 * margin) / (1 + 2 * MARGIN) / 2
        # clipped to `box`: rounding must never put a corner a hair outside the image
        boxes.append(
            (max(cx - half, left), max(cy - half, top), min(cx + half, right), min(cy + half, bottom))
        )
    return boxes


def hand_view_boxes(hand: tuple[float, float, float, float], width: int, height: int) -> list[Box]:
    """The squares at each of VIEW_MARGINS around a normalised hand box, each kept inside the image.

    Like the usual crop (`square_around` at MARGIN), so a hand at the edge is framed the same way.
    """
    return [square_around(hand, width, height, margin) for margin in VIEW_MARGINS]


def to_model_views(
    img: Image.Image,
    box: Box | None = None,
    size: int = MODEL_SIZE,
    crop: Crop = DEFAULT_CROP,
    hand: tuple[float, float, float, float] | None = None,
    style: PhotoStyle = PLAIN,
) -> np.ndarray:
    """The test-time views of one photo: (2 x len(VIEW_MARGINS), size, size) float32, plain then mirrored.

    Around `hand` (a normalised box) when given or found (`crop="auto"`); otherwise zooms of
    `box` or of the centre square. When the finder finds nothing (a tight crop already, like a
    Sign-MNIST image) every view is the whole centre square, as `--crop auto` reads it: zooms and
    mirrors of a tight crop cut the hand and flip it (measured: the classic model reads 1,500
    upscaled test images at 100% plainly and 91% through zoom/mirror views). `style` as in
    `to_model_input`; the background is dimmed only around a hand the finder found.
    """
    if crop not in CROPS:
        raise ValueError(f"crop must be one of {', '.join(CROPS)}, got {crop!r}")
    mask = None
    if hand is None and box is None and crop == "auto":
        hand, mask = find_hand_and_mask(img)
        if hand is None:
            plain = to_model_input(img, box=center_square(*img.size), size=size, style=style)
            return np.repeat(plain[None], 2 * len(VIEW_MARGINS), axis=0)
    if hand is not None:
        boxes = hand_view_boxes(hand, *img.size)
    else:
        boxes = view_boxes(box or center_square(*img.size))
    views = _grey_views(img, boxes, size, style, mask)
    return np.stack(views + [v[:, ::-1] for v in views])


def image_bytes_to_input(
    data: bytes,
    name: str,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    crop: Crop = DEFAULT_CROP,
    tta: bool = False,
    style: PhotoStyle = PLAIN,
) -> np.ndarray:
    """Bytes of an image file -> model input (28, 28) float32 cropped by `crop` (center|auto).

    With `tta`, its (V, 28, 28) test-time views instead; `style` is how the model reads photos.
    """
    img = decode_image(data, name, max_pixels, colour=needs_colour(crop, style))
    return to_model_views(img, crop=crop, style=style) if tta else to_model_input(img, crop=crop, style=style)


def main_view(pixels: np.ndarray) -> np.ndarray:
    """The (28, 28) input itself, or of test-time views the plain crop at the usual margin."""
    return pixels if pixels.ndim == 2 else pixels[len(VIEW_MARGINS) - 1]


def _as_float32(values: object) -> np.ndarray:
    """`values` as float32, anything beyond float32 (1e300, 10**400) as inf, so the range check sees it.

    Quietly: numpy warns on stderr for an overflowing cast and raises OverflowError for a Python
    int beyond any float; both are just out-of-range values to the user.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            return np.asarray(values, dtype=np.float32)
        except OverflowError:
            return np.full(np.shape(values), np.inf, dtype=np.float32)  # type: ignore[call-overload]


def array_to_input(values: object, name: str, size: int = MODEL_SIZE) -> np.ndarray:
    """A grey array (size x size or size*size flat, values 0-255) -> model input, checked."""
    try:
        arr = _as_float32(values)
    except (TypeError, ValueError) as err:
        raise ImageError(f"{name}: not a numeric array ({err})") from err
    if arr.size != size * size or arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.shape != (size, size)):
        raise ImageError(f"{name}: array of shape {arr.shape}, expected {size}x{size} grey values")
    if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 255:
        raise ImageError(f"{name}: values must be finite grey levels in 0-255")
    return arr.reshape(size, size)
