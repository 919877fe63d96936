"""Service settings: the limits that keep one request from taking the server down."""

from pydantic import BaseModel, ConfigDict, Field

from fingerspell.inference.images import DEFAULT_CROP, DEFAULT_MAX_PIXELS, PILLOW_MAX_PIXELS, Crop


class ServeSettings(BaseModel):
    """Limits and defaults of the HTTP service; the CLI only overrides what it is given.

    Attributes:
        max_upload_bytes: largest request body; bigger ones get 413 before they are read in full.
        max_images: most images in one request (413 above it).
        max_pixels: largest image (width x height) that is decoded at all; a decompression-bomb guard.
        default_top_k: how many letters each answer lists when the request does not say.
        crop: how an uploaded photo becomes the 28x28 input when the request does not say
            (`auto`: find the hand first; `center`: the centre square).
        tta: average each uploaded photo over 8 test-time views when the request does not say.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_upload_bytes: int = Field(default=10_000_000, gt=0)
    max_images: int = Field(default=16, gt=0)
    max_pixels: int = Field(default=DEFAULT_MAX_PIXELS, gt=0, le=PILLOW_MAX_PIXELS)
    default_top_k: int = Field(default=3, ge=1)
    crop: Crop = DEFAULT_CROP
    tta: bool = False
