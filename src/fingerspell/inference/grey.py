"""How a colour photo becomes the grey image a model reads: the model's `grey_weights`.

Sign-MNIST is grey, so training never sees colour and the reader of a photo has to choose; the
export writes the choice into the model's input spec, and every reader applies it. Its own
module so the export stage (which writes the default) does not depend on the image code.
"""

import math

GreyWeights = tuple[float, float, float]  # red, green, blue weights of a colour photo's grey
# ITU-R 601-2 luma: Pillow's own "L" and what a JPEG stores, so a grey decode needs no colour
LUMA: GreyWeights = (0.299, 0.587, 0.114)


def parse_grey_weights(value: object) -> GreyWeights:
    """Red, green, blue weights that keep grey levels in 0-255: three numbers >= 0 adding up to 1.

    Raises:
        ValueError: anything else, with a message that says what is expected.
    """
    items = list(value) if isinstance(value, list | tuple) else []
    numbers = [float(w) for w in items if type(w) in (int, float)]
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
