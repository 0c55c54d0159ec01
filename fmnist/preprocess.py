"""Turn any uploaded picture into what the models were trained on: a 28x28 grey item, light on black.

The steps redo the data set's own conversion of Zalando's product photos (Xiao et al. 2017, and
shared/FASHION_MNIST_FACTS.md): trim the background (colours within 5 % of the border's), make the
longest edge 28 px, centre the item on a 28x28 canvas, and negate so that the item is light on black.
The item touches the frame along its longest side, as in the data set, unless a margin is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MIN_SIDE_PX = 8  # smaller than this there is no item to see
MAX_PIXELS = 40_000_000  # 40 megapixels: above any phone photo, far below a decompression bomb
BACKGROUND_TOLERANCE = 0.05  # the data set trims colours within 5 % of the background's


class ImageRejected(ValueError):
    """The input cannot be used; the message says why, in words for the person who sent it."""


@dataclass
class Preprocessed:
    pixels: np.ndarray  # (28, 28) uint8, light item on black: what the model sees
    inverted: bool  # the picture had a light background and was negated
    box: tuple[int, int, int, int]  # (left, top, right, bottom) of the item in the original picture
    found_item: bool = True  # False when nothing stands out from the background


def open_image(source: str | Path | Image.Image | None) -> Image.Image:
    """Open and fully decode an image, refusing bad input with a clear ImageRejected."""
    if source is None:
        raise ImageRejected("No image was given: upload, paste or take a picture of a garment.")
    if isinstance(source, Image.Image):
        image = source
    else:
        try:
            image = Image.open(source)
        except UnidentifiedImageError:
            raise ImageRejected("That file is not an image PIL can read (try a PNG or JPEG).") from None
        except Image.DecompressionBombError:
            raise ImageRejected(f"The image is too large (over {MAX_PIXELS // 1_000_000} megapixels).") from None
        except OSError as e:
            raise ImageRejected(f"The image could not be opened: {e}.") from None
    w, h = image.size
    if w * h > MAX_PIXELS:  # checked on the header, before the pixels are decoded
        raise ImageRejected(f"The image is {w}x{h} pixels, over the {MAX_PIXELS // 1_000_000} megapixel limit: "
                            "please send a smaller picture.")
    if min(w, h) < MIN_SIDE_PX:
        raise ImageRejected(f"The image is only {w}x{h} pixels; it needs at least {MIN_SIDE_PX} on each side.")
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageRejected(f"The image file is damaged or truncated ({e}).") from None
    return image


def to_grey(image: Image.Image) -> np.ndarray:
    """Any mode (RGBA, LA, palette, CMYK, 16-bit, float) to float grey in [0, 1], honouring EXIF rotation.

    Transparent areas become white, the background of a shop photo."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or arr.max() > 255 else 255.0
        return np.clip(arr / top, 0, 1)
    if image.mode == "P" or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(canvas, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float64) / 255.0


def _border(grey: np.ndarray) -> np.ndarray:
    return np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])


def preprocess(source, margin_frac: float = 0.0) -> Preprocessed:
    """A picture (path, file or PIL image) -> the 28x28 model input, centred like the data set's items."""
    grey = to_grey(open_image(source))
    background = float(np.median(_border(grey)))
    inverted = background > 0.5  # a light background, as in shop photos: negate to light-on-black
    if inverted:
        grey, background = 1.0 - grey, 1.0 - background
    item = np.abs(grey - background) > BACKGROUND_TOLERANCE
    if item.any():
        rows, cols = np.flatnonzero(item.any(1)), np.flatnonzero(item.any(0))
        top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    else:  # a blank picture: keep it whole; the predictor says no item was found
        top, bottom, left, right = 0, grey.shape[0], 0, grey.shape[1]
    crop = np.clip(grey[top:bottom, left:right] - background, 0, 1)  # the background goes to black
    peak = crop.max()
    if peak > 0:
        crop = crop / peak  # the data set's items use the full 0-255 range
    h, w = crop.shape
    inner = max(1, round(28 * (1 - 2 * margin_frac)))
    scale = inner / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    small = Image.fromarray((crop * 255).round().astype(np.uint8)).resize((new_w, new_h), Image.Resampling.LANCZOS,
                                                                            reducing_gap=3.0)
    canvas = Image.new("L", (28, 28), 0)
    # an odd spare pixel goes before the item, as the data set's centring does (test images 0-19 agree)
    canvas.paste(small, ((29 - new_w) // 2, (29 - new_h) // 2))
    return Preprocessed(np.asarray(canvas, dtype=np.uint8), inverted, (int(left), int(top), int(right), int(bottom)),
                        found_item=bool(item.any()))
