"""Request and response bodies of the HTTP API (validated, documented in `/docs`)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fingerspell.inference.images import Crop

UNSURE_ADVICE = "Not sure: move closer so the hand fills the frame, use a plain background and better light."


class PredictOptions(BaseModel):
    """Query parameters of `POST /predict`."""

    model_config = ConfigDict(extra="forbid")

    top_k: int | None = Field(default=None, ge=1, le=24, description="letters per answer (default 3)")
    view: bool = Field(
        default=False, description="also return the 28x28 view the model saw, as a PNG data URL"
    )
    crop: Crop | None = Field(
        default=None,
        description="photo to 28x28: auto finds the hand first, center takes the centre square "
        "(default: the server's --crop)",
    )
    tta: bool | None = Field(
        default=None,
        description="average over 8 views of each photo (crops at 0-15% margin, mirrored): more "
        "accurate on real photos (default: the server's --tta)",
    )


class ArrayRequest(BaseModel):
    """JSON body: grey images as 28x28 nested lists (or flat lists of 784), values 0-255."""

    model_config = ConfigDict(extra="forbid")

    images: list[Any] = Field(min_length=1, description="one 28x28 array of grey values 0-255 per image")


class LetterScore(BaseModel):
    """One letter and its probability."""

    letter: str
    probability: float


class ItemPrediction(BaseModel):
    """The answer for one image, in request order."""

    name: str = Field(description="the uploaded file name, or images[i] for JSON arrays")
    letter: str
    probability: float
    unsure: bool = Field(description="true when the top probability is under the model's threshold")
    advice: str | None = Field(default=None, description="what to change when the answer is unsure")
    top_k: list[LetterScore]
    view: str | None = Field(default=None, description="data:image/png;base64 of the 28x28 model input")


class PredictResponse(BaseModel):
    """All answers of one request."""

    predictions: list[ItemPrediction]


class ErrorBody(BaseModel):
    """Every error answer: the HTTP status, a short code and one line saying what to do."""

    status: int
    error: str
    message: str
    errors: list[dict[str, Any]] | None = None
