"""Turn any uploaded picture into what the models were trained on: a 28x28 grey item, light on black.

The data set's own images were made from Zalando's shop photos (Xiao et al. 2017, and
shared/FASHION_MNIST_FACTS.md): the background trimmed, the longest edge made 28 px, the item centred on
a 28x28 canvas, the intensities negated so that the item is light on black. Shop photos have a clean white
backdrop; phone pictures do not. So the item is first found against a *modelled* backdrop:

1. The picture is decoded small (JPEG's own reduced decoding) to WORK_SIDE pixels on its longest side.
2. The backdrop is a smooth surface: a quadratic in x and y per colour channel, fitted robustly to the
   pixels that look like background (first the border, then every pixel the fit explains). That absorbs
   lighting gradients, vignetting and off-white, grey or coloured backdrops.
3. A pixel is surely item (a seed) when it differs from the backdrop strongly in lightness (CIELAB L*), or
   in colour apart from shading (RGB over grey: a red shirt on a grey table of the same grey level), or
   sits on a sharp edge. A soft shadow is darker but has neither a new colour nor sharp edges. On a textured
   backdrop (grout, wood grain, a woven sheet: heavy-tailed edges on the border) the cues are read from a
   median-filtered copy, and must pass what the texture reaches on the border. When no pixel passes (a
   pale, soft-edged item on white), the seeds are what differs from the backdrop by many times its own noise.
4. The seeds grow over every pixel that differs from the backdrop by more than its own noise (a pale
   garment's body) by a graph cut (OpenCV's GrabCut) seeded from what is certain: seeds are item, pixels
   within the backdrop's noise are backdrop, the rest is decided by colour models of the two and the edges
   between them. A darker region outside the seeds' outline starts as a shadow, unless it is larger than
   the outline (a shadow never is): then it is a grey garment's body. A marker watershed on the edges alone
   lost pale bodies through gaps in their outline.
5. The item is the largest connected region after closing small gaps, filling holes and dropping specks,
   with the regions near it or mostly within its box (a print's pieces). A white item on a near-white sheet
   that seeded only along its sole or seam is what its not-surely-backdrop pixels enclose. Other regions of
   comparable size are reported as further items. A lamp's hard shadow seeds like the item, so it is taken out
   afterwards: the only-darker band outside the item's own part, where that part's silhouette falls when moved
   aside.
6. A small tilt (up to MAX_TILT_DEG) is undone: the angle that makes the item's bounding box smallest.
7. Then the data set's conversion: intensity = the grey level against the backdrop (on the side where most
   of the item lies: darker than a light backdrop, or lighter; colour adds only a faint floor), zero outside
   the item, cropped to the item, longest side 28 px, centred, stretched to the full 0-255 range.

Image operations use scikit-image (and scipy.ndimage, which it builds on): a maintained library with a
plain NumPy API whose colour conversion, filters and morphology do all of this in ~0.1 s at WORK_SIDE;
the graph cut is OpenCV's (opencv-python-headless).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageOps

from fmnist.photo import morph
from fmnist.photo.decode import ImageRejected, open_image, to_rgb
from fmnist.photo.intensity import VISIBLE_SHARE, best_tilt, item_intensity, without_wires
from fmnist.photo.segment import segment

log = logging.getLogger(__name__)
WORK_SIDE = 512  # segmentation resolution: an item a tenth of the frame wide still spans 50 px, over 28


@dataclass
class Preprocessed:
    pixels: np.ndarray  # (28, 28) uint8, light item on black: what the model sees
    inverted: bool  # the picture had a light backdrop, so darker than the backdrop means item
    box: tuple[int, int, int, int]  # (left, top, right, bottom) of the item in the original picture
    found_item: bool = True  # False when nothing stands out from the backdrop
    items: int = 1  # regions of comparable size found; the largest was used
    touches_all_sides: bool = False  # the "item" reaches all four edges of the picture
    # the share of each side of the picture (top, bottom, left, right) the item lies along: where it is more than
    # nothing, a part of the item may be outside the picture (all 0 for a picture under 64 px, a data-set image)
    edge_reach: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    aspect: float = 1.0  # the item's long side over its short side (after the tilt is undone)
    tilt_deg: float = 0.0  # the rotation that was undone
    fill: float = 0.0  # share of the picture the item covers
    # away from the item: the share that surely differs from the backdrop, and the share the backdrop leaves
    # unexplained (fmnist.photo.segment); a photo of one garment on a surface leaves little of either
    clutter: float = 0.0
    unexplained: float = 0.0
    textured: bool = False  # the backdrop is textured (grout, grain, a woven sheet): fmnist.photo.backdrop
    view: np.ndarray | None = field(default=None, repr=False)  # (h, w, 3) uint8 picture at working size
    mask: np.ndarray | None = field(default=None, repr=False)  # (h, w) bool item mask at working size


def warm_up() -> None:
    """Import what preprocessing imports lazily (scikit-image's submodules, SciPy's): ~1 s the first time.
    Called before worker processes are forked, so that they inherit the modules instead of each paying it."""
    import cv2  # noqa: F401
    import scipy.ndimage  # noqa: F401
    import scipy.spatial  # noqa: F401
    import skimage.color  # noqa: F401
    import skimage.filters  # noqa: F401
    import skimage.filters.rank  # noqa: F401
    import skimage.morphology  # noqa: F401
    import skimage.segmentation  # noqa: F401
    import skimage.transform  # noqa: F401


def _working_copy(image: Image.Image) -> tuple[np.ndarray, float]:
    """(float RGB at most WORK_SIDE on its longest side, scale from the decoded image to working pixels)."""
    image = ImageOps.exif_transpose(image)
    decoded = max(image.size)
    if decoded > WORK_SIDE:
        image = image.copy()
        image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return to_rgb(image), max(image.size) / decoded


def preprocess(source, margin_frac: float = 0.0, deskew: bool = True) -> Preprocessed:
    """A picture (path, file or PIL image) -> the 28x28 model input, centred like the data set's items.

    Whatever goes wrong with one picture (a decoder's own error on a damaged file, a transform that fails on
    strange metadata, a picture too large to hold) is an ImageRejected with a sentence for its sender, never a
    raw exception: one picture's failure must not end a batch. The cause is logged."""
    try:
        return _preprocess(source, margin_frac, deskew)
    except ImageRejected:
        raise
    except MemoryError:
        raise ImageRejected("The picture is too large to process: please send a smaller one.") from None
    except Exception:  # noqa: BLE001 - any decoder's or transform's error on this one file
        log.warning("a picture could not be processed", exc_info=True)
        raise ImageRejected(
            "The picture could not be processed: its file seems damaged or unusual "
            "(try saving it again as a PNG or JPEG)."
        ) from None


def _preprocess(source, margin_frac: float, deskew: bool) -> Preprocessed:
    from skimage.transform import rotate

    image = open_image(source, draft_side=WORK_SIDE)
    full_w, full_h = image.info.get("full_size", image.size)
    turned = image.getexif().get(0x0112) in (5, 6, 7, 8)  # EXIF orientations that swap width and height
    original_size = (full_h, full_w) if turned else (full_w, full_h)
    rgb, _ = _working_copy(image)
    scale = max(rgb.shape[:2]) / max(original_size)
    h, w, _ = rgb.shape
    mask, info = segment(rgb)
    intensity = item_intensity(rgb, info, mask) * mask if info["found"] else np.zeros(mask.shape)
    if info["found"] and min(h, w) >= 64:
        mask = without_wires(mask, intensity)
        intensity = intensity * mask
    tilt = best_tilt(mask) if (deskew and info["found"]) else 0.0
    if tilt:
        # rotate(angle) turns counter-clockwise in image coordinates; undo the measured tilt
        mask_r = rotate(mask.astype(float), -tilt, resize=True, order=1) > 0.5
        intensity_r = rotate(intensity, -tilt, resize=True, order=1)
    else:
        mask_r, intensity_r = mask, intensity
    # the crop is the box of the item's visible pixels: the mask reaches a pixel or two past the item, where
    # edges were found, and those would become a margin the data set's items do not have
    visible = mask_r & (intensity_r > VISIBLE_SHARE * intensity_r.max()) if info["found"] else mask_r
    if info["found"] and visible.any():
        rows, cols = np.flatnonzero(visible.any(1)), np.flatnonzero(visible.any(0))
        top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    else:  # nothing found: keep the picture whole; the predictor says no item was found
        top, bottom, left, right = 0, intensity_r.shape[0], 0, intensity_r.shape[1]
    crop = intensity_r[top:bottom, left:right] * mask_r[top:bottom, left:right]
    canvas = to_28(crop, margin_frac)
    ch, cw = crop.shape

    if info["found"]:  # the item's visible box in the original picture's pixels (before the tilt was undone)
        seen = mask & (intensity > VISIBLE_SHARE * intensity.max())
        ys, xs = np.nonzero(seen if seen.any() else mask)
        box = tuple(int(round(v / scale)) for v in (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
        box = (box[0], box[1], min(box[2], original_size[0]), min(box[3], original_size[1]))
    else:
        box = (0, 0, *original_size)
    touches = bool(mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any())
    reach = (
        tuple(float(side.mean()) for side in (mask[0], mask[-1], mask[:, 0], mask[:, -1]))
        if min(h, w) >= 64
        else (0.0, 0.0, 0.0, 0.0)
    )  # a small picture (a data-set image) is its item's own box
    return Preprocessed(
        canvas,
        inverted=info["light_backdrop"],
        box=box,
        found_item=info["found"],
        items=info["items"],
        touches_all_sides=touches,
        edge_reach=reach,
        aspect=float(max(ch, cw) / max(1, min(ch, cw))),
        tilt_deg=tilt,
        fill=float(mask.mean()),
        clutter=info["clutter"],
        unexplained=info["unexplained"],
        textured=info.get("textured", False),
        view=(rgb * 255).round().astype(np.uint8),
        mask=mask,
    )


def to_28(crop: np.ndarray, margin_frac: float = 0.0) -> np.ndarray:
    """The item's intensity, cropped to it -> the (28, 28) uint8 model input: longest side 28 px (less the margin),
    centred, stretched to the full 0-255 range as the data set's items are."""
    ch, cw = crop.shape
    inner = max(1, round(28 * (1 - 2 * margin_frac)))
    fit = inner / max(ch, cw)
    new_w, new_h = max(1, round(cw * fit)), max(1, round(ch * fit))
    small = np.asarray(
        Image.fromarray(crop.astype(np.float32), mode="F").resize(
            (new_w, new_h), Image.Resampling.LANCZOS, reducing_gap=3.0
        ),
        dtype=np.float64,
    ).clip(0, None)
    peak = small.max()
    small = small / peak if peak > 0 else small  # the data set's items use the full 0-255 range
    canvas = np.zeros((28, 28), np.uint8)
    # an odd spare pixel goes before the item, as the data set's centring does (test images 0-19 agree)
    y0, x0 = (29 - new_h) // 2, (29 - new_w) // 2
    canvas[y0 : y0 + new_h, x0 : x0 + new_w] = (small * 255).round().astype(np.uint8)
    return canvas


def outline(pre: Preprocessed, colour=(255, 40, 40)) -> Image.Image:
    """The picture at working size with the found item's outline and box drawn on it."""
    view = pre.view.copy()
    if pre.found_item and pre.mask is not None:
        edge = pre.mask & ~morph.erode(pre.mask, iterations=2)
        view[edge] = colour
    image = Image.fromarray(view)
    if pre.found_item and pre.mask is not None:
        ys, xs = np.nonzero(pre.mask)
        ImageDraw.Draw(image).rectangle((xs.min(), ys.min(), xs.max(), ys.max()), outline=(40, 160, 255), width=2)
    return image
