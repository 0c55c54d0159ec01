"""Decoding an upload: open it safely (size limits, damaged files, HEIC), honour its EXIF rotation and turn any
pixel mode into float RGB or grey, refusing bad input with a message for the person who sent it."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

# Phones save HEIC (iPhone uploads from the Files app arrive that way); Pillow opens AVIF itself (Pillow 12).
# libheif applies the picture's rotation while decoding and resets the EXIF orientation to 1. pillow-heif is in
# requirements.txt; a training machine without it (a GPU box's own image) still trains, and only a HEIC
# upload there would be refused as unreadable.
try:
    from pillow_heif import register_heif_opener
except ImportError:
    register_heif_opener = None
if register_heif_opener is not None:
    register_heif_opener()

MIN_SIDE_PX = 8  # smaller than this there is no item to see
MAX_PIXELS = 40_000_000  # 40 megapixels: above any phone photo, far below a decompression bomb
# Pillow's own limits, set on purpose rather than left at its defaults: it refuses an image over twice
# MAX_IMAGE_PIXELS while opening it (our own check below refuses anything over MAX_PIXELS before decoding), and
# a PNG text or colour-profile chunk that inflates past MAX_TEXT_CHUNK (all of them past MAX_TEXT_MEMORY). A
# camera's colour profile is well under 1 MB; a 2 MB zTXt chunk is only there to spend memory.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
# between one and two times that Pillow only warns; open_image refuses those itself, with a sentence
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
PngImagePlugin.MAX_TEXT_CHUNK = 1 * 2**20
PngImagePlugin.MAX_TEXT_MEMORY = 4 * 2**20


class ImageRejected(ValueError):
    """The input cannot be used; the message says why, in words for the person who sent it."""


def open_image(source: str | Path | Image.Image | None, draft_side: int | None = None) -> Image.Image:
    """Open and fully decode an image, refusing bad input with a clear ImageRejected. With draft_side, a
    JPEG is decoded at the smallest of its built-in reduced scales that keeps that many pixels."""
    if source is None:
        raise ImageRejected("No image was given: upload, paste or take a picture of a garment.")
    opened_here = not isinstance(source, Image.Image)
    if not opened_here:
        image = source
    else:
        try:
            image = Image.open(source)
        except UnidentifiedImageError:
            raise ImageRejected("That file is not an image PIL can read (try a PNG, JPEG, HEIC or AVIF).") from None
        except Image.DecompressionBombError:
            raise ImageRejected(f"The image is too large (over {MAX_PIXELS // 1_000_000} megapixels).") from None
        except OSError as e:
            raise ImageRejected(f"The image could not be opened: {e}.") from None
        except ValueError as e:
            raise ImageRejected(_damaged(e)) from None
        except Exception:  # noqa: BLE001 - Pillow's plugins raise TypeError, struct.error and more on bad files
            raise ImageRejected("The image file is damaged and could not be opened.") from None
    w, h = image.size
    if w * h > MAX_PIXELS:  # checked on the header, before the pixels are decoded
        raise ImageRejected(
            f"The image is {w}x{h} pixels, over the {MAX_PIXELS // 1_000_000} megapixel limit: "
            "please send a smaller picture."
        )
    if min(w, h) < MIN_SIDE_PX:
        raise ImageRejected(f"The image is only {w}x{h} pixels; it needs at least {MIN_SIDE_PX} on each side.")
    image.info["full_size"] = (w, h)  # before any reduced decoding, for boxes in the original's pixels
    # never on a caller's own image object: draft() would shrink it for them too
    if opened_here and draft_side and getattr(image, "format", None) == "JPEG" and max(w, h) > 2 * draft_side:
        image.draft(image.mode, (draft_side, draft_side))  # DCT scaling: a 12 MP photo decodes in a fraction
    try:
        image.load()
    except Image.DecompressionBombError:
        raise ImageRejected(f"The image is too large (over {MAX_PIXELS // 1_000_000} megapixels).") from None
    except ValueError as e:
        raise ImageRejected(_damaged(e)) from None
    except Exception as e:  # noqa: BLE001 - OSError, SyntaxError, TypeError, struct.error... on a bad file
        raise ImageRejected(f"The image file is damaged or truncated ({type(e).__name__}: {e}).") from None
    return image


def _damaged(e: ValueError) -> str:
    if "MAX_TEXT" in str(e):  # a zTXt, iTXt or iCCP chunk that would inflate past PngImagePlugin's limit
        return (
            f"The image carries text or a colour profile over {PngImagePlugin.MAX_TEXT_CHUNK // 2**20} MB "
            "when unpacked, so it was not opened (save the picture again without its metadata)."
        )
    return f"The image file is damaged ({e})."


def to_rgb(image: Image.Image) -> np.ndarray:
    """Any mode (RGBA, LA, palette, CMYK, 16-bit, float) to float RGB in [0, 1], honouring EXIF rotation.

    Transparent areas become white, the background of a shop photo."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or arr.max() > 255 else 255.0
        return np.repeat(np.clip(arr / top, 0, 1)[..., None], 3, axis=2)
    if image.mode == "P" or "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        canvas = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(canvas, image.convert("RGBA"))
    return np.asarray(image.convert("RGB"), dtype=np.float64) / 255.0


def to_grey(image: Image.Image) -> np.ndarray:
    """Float grey in [0, 1] with PIL's (ITU-R 601) weights, as the data set's 8-bit grayscale."""
    return grey_of(to_rgb(image))


def grey_of(rgb: np.ndarray) -> np.ndarray:
    return rgb @ np.array([0.299, 0.587, 0.114])
