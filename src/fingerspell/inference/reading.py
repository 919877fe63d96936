"""How a model wants a photo read: its `grey_weights` and `dim_background`, from its input spec.

Sign-MNIST is grey and tight around the hand, so training never sees colour or a photo's
background, and the reader of a photo has to choose how to turn it grey and what to do with the
room around the hand. The export writes both choices into the model's input spec and every
reader applies them. Its own module so the export stage (which writes the defaults) does not
depend on the image code.
"""

import math
import numbers
from dataclasses import dataclass

GreyWeights = tuple[float, float, float]  # red, green, blue weights of a colour photo's grey
# ITU-R 601-2 luma: Pillow's own "L" and what a JPEG stores, so a grey decode needs no colour
LUMA: GreyWeights = (0.299, 0.587, 0.114)


def _is_number(value: object) -> bool:
    """An int or a float (numpy's too) but not a bool: `true` in a config is not 1."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def parse_grey_weights(value: object) -> GreyWeights:
    """Red, green, blue weights that keep grey levels in 0-255: three numbers >= 0 adding up to 1.

    Raises:
        ValueError: anything else, with a message that says what is expected.
    """
    items = list(value) if isinstance(value, list | tuple) else []
    numbers = [float(w) for w in items if _is_number(w)]
    if not (
        len(items) == 3
        and len(numbers) == 3
        and all(math.isfinite(w) and w >= 0 for w in numbers)
        and abs(sum(numbers) - 1.0) <= 1e-3
    ):
        raise ValueError(
            f"{value!r} must be 3 numbers >= 0 (red, green, blue) that add up to 1, e.g. [0, 1, 0]"
        )
    return (numbers[0], numbers[1], numbers[2])


def parse_dim_background(value: object) -> float:
    """A share in [0, 1]: how far the finder's background moves towards the crop's mean grey.

    Raises:
        ValueError: anything else, with a message that says what is expected.
    """
    if not _is_number(value) or not 0.0 <= float(value) <= 1.0:  # type: ignore[arg-type]
        raise ValueError(f"{value!r} must be a number in [0, 1] (0: off, 1: background made flat grey)")
    return float(value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class PhotoStyle:
    """What a model's input spec asks of a photo's reader (the defaults: luma, background kept)."""

    grey_weights: GreyWeights = LUMA
    dim_background: float = 0.0  # only where the hand finder ran (`--crop auto`) and found a hand

    def __post_init__(self) -> None:
        parse_grey_weights(self.grey_weights)
        parse_dim_background(self.dim_background)


PLAIN = PhotoStyle()
