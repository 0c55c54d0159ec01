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
   median-filtered copy, and must pass what the texture reaches on the border.
4. The seeds grow over every pixel that differs from the backdrop by more than its own noise (a pale
   garment's body) by a graph cut (OpenCV's GrabCut) seeded from what is certain: seeds are item, pixels
   within the backdrop's noise are backdrop, the rest is decided by colour models of the two and the edges
   between them. A marker watershed on the edges alone lost pale bodies through gaps in their outline.
5. The item is the largest connected region after closing small gaps, filling holes and dropping specks,
   with the regions near it or mostly within its box (a print's pieces). Other regions of comparable size
   are reported as further items.
6. A small tilt (up to 20 degrees) is undone: the angle that makes the item's bounding box smallest.
7. Then the data set's conversion: intensity = the grey level against the backdrop (on the side where most
   of the item lies: darker than a light backdrop, or lighter; colour adds only a faint floor), zero outside
   the item, cropped to the item, longest side 28 px, centred, stretched to the full 0-255 range.

Image operations use scikit-image (and scipy.ndimage, which it builds on): a maintained library with a
plain NumPy API whose colour conversion, filters and morphology do all of this in ~0.1 s at WORK_SIDE;
the graph cut is OpenCV's (opencv-python-headless).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageOps, UnidentifiedImageError

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
WORK_SIDE = 512  # segmentation resolution: an item a tenth of the frame wide still spans 50 px, over 28
MAX_TILT_DEG = 20  # photos are taken roughly upright; larger turns are not undone
# Lightness in CIELAB L* units (0-100). A soft shadow darkens a light backdrop by up to ~20 L* units; a
# garment that is not much darker than the backdrop is found by its edges or its colour.
LIGHTNESS_STRONG = 22.0  # on a light backdrop; on a dark one shadows do not show, and noise sets the bar
CHROMA_STRONG = 0.15  # in RGB-over-grey units: a muted colour (saturation 0.2) differs from grey by ~0.1-0.2
EDGE_NOISE_FACTOR = 5.0  # an edge is this many times the backdrop's own gradient noise
EDGE_FLOOR = 1.5  # and at least this steep (skimage Sobel of L*, sigma-1 blur, at WORK_SIDE); higher splits faint items
OTHER_ITEM_SHARE = 0.3  # a second region at least this share of the largest one counts as another item
VISIBLE_SHARE = 0.04  # item pixels fainter than this share of the brightest one do not widen the crop
PART_GAP = 0.04  # regions closer than this share of the picture's side are parts of one item (sandal straps)
INSIDE_SHARE = 0.6  # a region with this share of its box inside the largest region's box is part of that item
# A pixel within this many robust standard deviations of the backdrop's own variation (lightness, colour,
# edges) is backdrop for certain: region growing starts from there (3 sigma, the usual bound of noise)
BACKDROP_SPREAD = 3.0
# A backdrop is textured when the 95th percentile of its edges is this many times their median (noise: ~2)
TEXTURE_TAIL = 4.0
TEXTURE_QUANTILE = 99  # on a textured backdrop, item cues must exceed this percentile of the ring's own
TEXTURE_SIZE = 0.015  # on a textured backdrop, detail thinner than this share of the picture's side is wiped out
WIRE_WIDTH = 0.7  # lines thinner than this many pixels of the 28x28 result are not the item (hangers)
GRABCUT_ROUNDS = 3  # GrabCut's rounds of refitting its colour models: the cut settles by the third
COLOUR_FLOOR = 0.3  # colour's share of the intensity where the grey level shows nothing (item_intensity)


class ImageRejected(ValueError):
    """The input cannot be used; the message says why, in words for the person who sent it."""


@dataclass
class Preprocessed:
    pixels: np.ndarray  # (28, 28) uint8, light item on black: what the model sees
    inverted: bool  # the picture had a light backdrop, so darker than the backdrop means item
    box: tuple[int, int, int, int]  # (left, top, right, bottom) of the item in the original picture
    found_item: bool = True  # False when nothing stands out from the backdrop
    items: int = 1  # regions of comparable size found; the largest was used
    touches_all_sides: bool = False  # the "item" reaches all four edges of the picture
    aspect: float = 1.0  # the item's long side over its short side (after the tilt is undone)
    tilt_deg: float = 0.0  # the rotation that was undone
    fill: float = 0.0  # share of the picture the item covers
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
    w, h = image.size
    if w * h > MAX_PIXELS:  # checked on the header, before the pixels are decoded
        raise ImageRejected(f"The image is {w}x{h} pixels, over the {MAX_PIXELS // 1_000_000} megapixel limit: "
                            "please send a smaller picture.")
    if min(w, h) < MIN_SIDE_PX:
        raise ImageRejected(f"The image is only {w}x{h} pixels; it needs at least {MIN_SIDE_PX} on each side.")
    image.info["full_size"] = (w, h)  # before any reduced decoding, for boxes in the original's pixels
    # never on a caller's own image object: draft() would shrink it for them too
    if opened_here and draft_side and getattr(image, "format", None) == "JPEG" and max(w, h) > 2 * draft_side:
        image.draft(image.mode, (draft_side, draft_side))  # DCT scaling: a 12 MP photo decodes in a fraction
    try:
        image.load()
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageRejected(f"The image file is damaged or truncated ({e}).") from None
    return image


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


def _working_copy(image: Image.Image) -> tuple[np.ndarray, float]:
    """(float RGB at most WORK_SIDE on its longest side, scale from the decoded image to working pixels)."""
    image = ImageOps.exif_transpose(image)
    decoded = max(image.size)
    if decoded > WORK_SIDE:
        image = image.copy()
        image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return to_rgb(image), max(image.size) / decoded


def _design(ys: np.ndarray, xs: np.ndarray, h: int, w: int) -> np.ndarray:
    y, x = 2 * ys / max(1, h - 1) - 1, 2 * xs / max(1, w - 1) - 1
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)


def fit_backdrop(channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A smooth backdrop fitted robustly to the picture's border ring, and the pixels it explains.
    channels is (h, w, C) with CIELAB in the first three; the residual is measured in those.

    The fit grows from a constant to a plane to a quadratic surface per channel (lighting gradients,
    vignetting), each round keeping only the border pixels the last one explained, so that an item that
    touches the border becomes an outlier before the surface could bend towards it. Interior pixels are
    never fitted: the surface cannot swallow a large item."""
    h, w, c = channels.shape
    ring = _ring(h, w)
    ys, xs = np.nonzero(ring)
    step = max(1, len(ys) // 8000)  # at most ~8k border pixels
    ys, xs = ys[::step], xs[::step]
    values = channels[ys, xs]
    design = _design(ys.astype(float), xs.astype(float), h, w)
    keep = np.ones(len(ys), bool)
    for terms in (1, 3, 6):  # constant, plane, quadratic
        coef, *_ = np.linalg.lstsq(design[keep, :terms], values[keep], rcond=None)
        resid = np.linalg.norm(values[:, :3] - design[:, :terms] @ coef[:, :3], axis=1)
        spread = 1.4826 * np.median(np.abs(resid[keep] - np.median(resid[keep])))
        keep = resid < np.median(resid[keep]) + max(3 * spread, 4.0)
        if keep.sum() < 12:
            break
    all_y, all_x = np.mgrid[0:h, 0:w]
    backdrop = (_design(all_y.ravel().astype(float), all_x.ravel().astype(float), h, w)[:, :terms] @ coef).reshape(h, w, c)
    backdrop[..., 0] = backdrop[..., 0].clip(0, 100)
    resid = np.linalg.norm(channels[..., :3] - backdrop[..., :3], axis=2)
    explained = resid < np.median(resid[ring]) + max(3 * spread, 4.0)
    return backdrop, explained


def _ring(h: int, w: int) -> np.ndarray:
    """The picture's border ring, 3 % of its short side wide: where the backdrop is measured."""
    ring_px = max(1, round(0.03 * min(h, w)))
    ring = np.zeros((h, w), bool)
    ring[:ring_px], ring[-ring_px:], ring[:, :ring_px], ring[:, -ring_px:] = True, True, True, True
    return ring


def backdrop_is_textured(lab: np.ndarray) -> bool:
    """Whether the backdrop has a texture of its own (grout, wood grain, a woven or printed sheet): its edges
    on the border ring are heavy-tailed. Noise alone gives a Rayleigh-like spread of edge strengths, whose
    95th percentile is about twice the median; lines and grain put many times the median there."""
    from skimage import filters

    h, w = lab.shape[:2]
    if min(h, w) < 64:
        return False
    edges = filters.sobel(filters.gaussian(lab[..., 0], sigma=1.0))[_ring(h, w)]
    q50, q95 = np.percentile(edges, [50, 95])
    return bool(q95 > max(TEXTURE_TAIL * q50, EDGE_FLOOR))


def segment(rgb: np.ndarray) -> tuple[np.ndarray, dict]:
    """The item mask at this resolution, and what the segmentation measured.

    On a textured backdrop the item is found on a median-filtered copy, which wipes out lines and grain
    thinner than TEXTURE_SIZE while a garment keeps its body; the intensity still comes from the picture."""
    from scipy import ndimage as ndi
    from skimage import color, filters

    h, w, _ = rgb.shape
    lab = color.rgb2lab(rgb)
    picture_grey = grey_of(rgb)  # the intensity's source, on a textured backdrop too
    textured = backdrop_is_textured(lab)
    if textured:
        from skimage.filters.rank import median
        from skimage.morphology import disk

        size = max(1, round(TEXTURE_SIZE * max(h, w) / 2))
        rgb = np.stack([median((rgb[..., c] * 255).round().astype(np.uint8), disk(size)) for c in range(3)],
                       axis=2) / 255.0
        lab = color.rgb2lab(rgb)
    grey = grey_of(rgb)
    backdrop, explained = fit_backdrop(np.concatenate([lab, grey[..., None], rgb], axis=2))
    d_light = lab[..., 0] - backdrop[..., 0]  # CIELAB lightness difference
    # colour apart from shading: each pixel's RGB over its own grey, against the backdrop's. A shadow scales
    # all three channels alike and leaves this unchanged; a red shirt on a grey table changes it a lot.
    hue = (rgb + 0.05) / (grey[..., None] + 0.05)  # a neutral grey is (1, 1, 1) at any lightness
    backdrop_hue = (backdrop[..., 4:7] + 0.05) / (backdrop[..., 3:4] + 0.05)
    d_chroma = np.linalg.norm(hue - backdrop_hue, axis=2)
    light_backdrop = float(np.median(backdrop[..., 0])) > 50
    # sharp edges: the gradient of the lightness difference, against the backdrop's own gradient noise
    edges = filters.sobel(filters.gaussian(d_light, sigma=1.0))
    noise = float(np.median(edges[explained])) if explained.any() else float(np.median(edges))
    light_noise = 1.4826 * float(np.median(np.abs(d_light[explained]))) if explained.any() else 0.0
    light_bar = LIGHTNESS_STRONG if light_backdrop else max(6 * light_noise, 3.0)
    chroma_noise = 1.4826 * float(np.median(d_chroma[explained])) if explained.any() else 0.0
    # each cue as a multiple of its bar: above 1 a pixel is surely item (a seed)
    edge_bar = max(EDGE_NOISE_FACTOR * noise, EDGE_FLOOR)
    chroma_bar = max(CHROMA_STRONG, 4 * chroma_noise)
    if textured:  # what the texture itself reaches on the border ring (grout, grain) is not item either
        ring = _ring(h, w)
        light_bar = max(light_bar, float(np.percentile(np.abs(d_light[ring]), TEXTURE_QUANTILE)))
        chroma_bar = max(chroma_bar, float(np.percentile(d_chroma[ring], TEXTURE_QUANTILE)))
        edge_bar = max(edge_bar, float(np.percentile(edges[ring], TEXTURE_QUANTILE)))
    evidence = np.maximum.reduce([np.abs(d_light) / light_bar, d_chroma / chroma_bar, edges / edge_bar])
    strong = evidence > 1
    # region growing: the seeds grow over the pixels that differ from the backdrop more than the backdrop
    # varies (a pale garment's body, a faint shadow), by a graph cut (_grow). Such a pixel is probably item when
    # it has a colour of its own or is lighter than the backdrop, or lies within the seeds' outline; one that
    # is only darker, outside the outline, is probably a shadow, and starts on the backdrop's side.
    light_spread = BACKDROP_SPREAD * light_noise + 1.0
    coloured = d_chroma >= BACKDROP_SPREAD * chroma_noise + 0.02
    backdrop_like = (np.abs(d_light) < light_spread) & ~coloured & (edges <= BACKDROP_SPREAD * noise)
    only_darker = (d_light <= -light_spread) & ~coloured
    # a 28x28 data-set image is exact already: its faint pixels stay as they are; on a textured backdrop
    # growth would run along the texture's lines (grout) as along a pale body, so there the seeds are the item
    if min(h, w) >= 64 and not textured:
        strong = _grow(strong, backdrop_like & ~strong, only_darker & ~strong, rgb)
    # close gaps in outlines, fill what they enclose, drop specks (sizes relative to the picture)
    r = max(1, round(0.012 * max(h, w)))
    mask = _closed(strong, r)
    mask = ndi.binary_fill_holes(mask)
    if min(h, w) >= 64:
        mask = ndi.binary_opening(mask, iterations=max(1, r // 2))
    labels, n = ndi.label(mask)
    info = {"light_backdrop": light_backdrop, "grey": picture_grey, "backdrop_grey": backdrop[..., 3],
            "d_chroma": d_chroma, "items": 0, "found": False}
    if n == 0:
        return np.zeros((h, w), bool), info
    areas = ndi.sum_labels(np.ones_like(labels), labels, index=np.arange(1, n + 1))
    order = np.argsort(-areas)
    min_area = max(4, 0.002 * h * w)  # specks
    if areas[order[0]] < min_area:
        return np.zeros((h, w), bool), info
    # regions within a small gap of the largest are parts of the same item; others of comparable size are
    # further items
    near = ndi.distance_transform_edt(labels != order[0] + 1) <= max(2.0, PART_GAP * max(h, w))
    joined = set(np.unique(labels[near & (labels > 0)]).tolist())
    # and so are regions lying mostly within its box: the pieces of a print or a fold that came apart from the
    # garment's faint body (two garments side by side have boxes apart)
    boxes = ndi.find_objects(labels)
    main = boxes[order[0]]
    for i, b in enumerate(boxes):
        inside = [max(0, min(b[k].stop, main[k].stop) - max(b[k].start, main[k].start)) for k in (0, 1)]
        if inside[0] * inside[1] >= INSIDE_SHARE * (b[0].stop - b[0].start) * (b[1].stop - b[1].start):
            joined.add(i + 1)
    joined = np.asarray(sorted(joined))
    item = np.isin(labels, joined)
    others = [areas[i] for i in order[1:] if i + 1 not in joined]
    info["items"] = 1 + int(np.sum(np.asarray(others) >= max(min_area, OTHER_ITEM_SHARE * areas[order[0]])))
    info["found"] = True
    return item, info


def _closed(mask: np.ndarray, r: int) -> np.ndarray:
    """A morphological closing over gaps of up to 2r pixels; padded first, so that the picture's edge closes
    nothing."""
    from scipy import ndimage as ndi

    return ndi.binary_closing(np.pad(mask, r), iterations=r)[r:-r, r:-r]


def _grow(seeds: np.ndarray, backdrop: np.ndarray, shadow_like: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Item seeds grown by a graph cut (OpenCV's GrabCut), seeded from what is certain: the seeds are item,
    the backdrop-like pixels backdrop, and the undecided pixels joined to a seed probably item. GrabCut fits a
    colour model to each side and cuts where the two models and the picture's edges agree, so a pale body
    whose colour differs from the backdrop's stays item even where its outline has gaps. (A marker watershed
    on the colour gradient, used before, let the backdrop flood such a body through the outline's weakest
    point: README, "Pale garments", and benchmarks/results/photos-val-pale-{before,after}-cpu.json.)

    shadow_like pixels (only darker than the backdrop) start on the backdrop's side unless they lie within
    the seeds' outline: a soft shadow beside the item stays out, a pale grey body inside its outline stays in."""
    import cv2
    from scipy import ndimage as ndi
    from skimage import morphology

    if not backdrop.any():  # nothing is surely backdrop (a data-set image: item on pure black): keep the seeds
        return seeds
    seeds = morphology.remove_small_objects(seeds, max_size=max(4, seeds.size // 20000))  # specks seed nothing
    if not seeds.any():
        return seeds
    # only pixels joined to a seed through undecided ones are probably item: work inside their box
    labels, _ = ndi.label(~backdrop)
    reach = np.isin(labels, np.unique(labels[seeds]))
    rows, cols = np.flatnonzero(reach.any(1)), np.flatnonzero(reach.any(0))
    pad = 8  # px: a margin of backdrop around the item for the backdrop's colour model
    top, bottom = max(0, rows[0] - pad), min(seeds.shape[0], rows[-1] + pad + 1)
    left, right = max(0, cols[0] - pad), min(seeds.shape[1], cols[-1] + pad + 1)
    box = (slice(top, bottom), slice(left, right))
    # within the outline: the seeds closed over gaps of up to ~5 % of the picture's side, holes filled
    r = max(2, round(0.025 * max(seeds.shape)))
    outline = ndi.binary_fill_holes(_closed(seeds[box], r))
    shadow = shadow_like[box] & ~outline
    marks = np.where(seeds[box], cv2.GC_FGD, np.where(backdrop[box] | shadow, cv2.GC_BGD,
                     np.where(reach[box], cv2.GC_PR_FGD, cv2.GC_PR_BGD))).astype(np.uint8)
    if not (marks == cv2.GC_BGD).any():
        return seeds
    bgr = np.ascontiguousarray((rgb[box] * 255).round().astype(np.uint8)[..., ::-1])
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)  # GrabCut's two colour models
    # GrabCut starts its colour models with k-means from OpenCV's per-thread random generator: seeded here, a
    # picture's mask depends on the picture alone, not on what this thread cut before (a batch worker and the
    # app's own request gave probabilities 3e-5 apart)
    cv2.setRNGSeed(0)
    cv2.grabCut(bgr, marks, None, *models, GRABCUT_ROUNDS, cv2.GC_INIT_WITH_MASK)
    grown = seeds.copy()
    grown[box] = (marks == cv2.GC_FGD) | (marks == cv2.GC_PR_FGD)
    return grown


def _without_wires(mask: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """The mask without what is thinner than WIRE_WIDTH pixels of the 28x28 result: a hanger's wire and
    hook, a string, a cable. No part of a data-set item is that thin. Measured on the visible pixels (the
    mask itself is a little wider than what it found); an item that is all thin lines (a white garment found
    by its outline alone) is left as it is."""
    from scipy import ndimage as ndi
    from skimage.morphology import disk

    visible = mask & (intensity > VISIBLE_SHARE * intensity.max())
    if not visible.any():
        return mask
    ys, xs = np.nonzero(visible)
    radius = int(round(WIRE_WIDTH * (max(np.ptp(ys), np.ptp(xs)) + 1) / 28 / 2))
    if radius < 1:
        return mask
    opened = ndi.binary_opening(visible, disk(radius))
    if opened.sum() < 0.5 * visible.sum():
        return mask
    # what survives, and the mask pixels next to it (the item's dim inside and edge), but no wire
    return mask & ndi.binary_dilation(opened, disk(2 * radius))


def _best_tilt(mask: np.ndarray) -> float:
    """The rotation (degrees, within MAX_TILT_DEG) that makes the item's axis-aligned box smallest, or 0
    when no rotation shrinks it by more than 3 %: an upright item is left alone."""
    ys, xs = np.nonzero(mask)
    if len(ys) < 20:
        return 0.0
    from scipy.spatial import ConvexHull, QhullError

    pts = np.stack([xs, ys], 1).astype(float)
    try:
        pts = pts[ConvexHull(pts).vertices]
    except QhullError:
        return 0.0
    angles = np.arange(-MAX_TILT_DEG, MAX_TILT_DEG + 0.5, 1.0)
    rad = np.radians(angles)
    rx = pts[:, 0:1] * np.cos(rad) - pts[:, 1:2] * np.sin(rad)  # (P, A)
    ry = pts[:, 0:1] * np.sin(rad) + pts[:, 1:2] * np.cos(rad)
    area = np.ptp(rx, 0) * np.ptp(ry, 0)
    best = int(np.argmin(area))
    upright = area[len(angles) // 2]
    return float(angles[best]) if area[best] < 0.97 * upright else 0.0


def item_intensity(rgb: np.ndarray, info: dict, mask: np.ndarray | None = None) -> np.ndarray:
    """How much the item stands out from the backdrop, in [0, 1], by its grey level, as the data set's
    conversion did (8-bit grey of the photo, negated): darker than the backdrop, as in a shop photo, or lighter
    than it where most of the item is (a pale garment on a light-grey table, a white one on a dark floor); the
    lighter side also keeps the darker print of a light garment on a light backdrop. A saturated green shirt is
    a mid grey with its shading, not a flat silhouette.

    Colour serves the mask; here it only gives a faint floor (COLOUR_FLOOR of its strength), so that an item
    of the backdrop's own grey (a red shirt on a grey table) is not empty, while the grey's shading, folds
    and print still decide what the model sees wherever there is any."""
    # in grey code values, as the data set's 8-bit greys: a data-set image (item on black) passes unchanged
    grey, back = info["grey"], np.clip(info["backdrop_grey"], 0.0, 1.0)
    # the item's side is where most of its contrast lies, on any backdrop: a navy coat on a dark wood floor is
    # darker still; a white shirt on a light-grey table is lighter, and its darker print counts too
    if mask is None or not mask.any():
        darker = info["light_backdrop"]
    else:
        diff = (grey - back)[mask]
        darker = bool(np.clip(-diff, 0, None).sum() > np.clip(diff, 0, None).sum())
    below = (back - grey) / np.maximum(back, 0.1)
    if darker:
        contrast = below
    else:
        contrast = (grey - back) / np.maximum(1.0 - back, 0.1)
        if info["light_backdrop"]:
            contrast = np.maximum(contrast, below)
    return np.maximum(np.clip(contrast, 0, 1), COLOUR_FLOOR * np.clip(info["d_chroma"] / 1.5, 0, 1))


def preprocess(source, margin_frac: float = 0.0, deskew: bool = True) -> Preprocessed:
    """A picture (path, file or PIL image) -> the 28x28 model input, centred like the data set's items."""
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
        mask = _without_wires(mask, intensity)
        intensity = intensity * mask
    tilt = _best_tilt(mask) if (deskew and info["found"]) else 0.0
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
    ch, cw = crop.shape
    inner = max(1, round(28 * (1 - 2 * margin_frac)))
    fit = inner / max(ch, cw)
    new_w, new_h = max(1, round(cw * fit)), max(1, round(ch * fit))
    small = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F").resize(
        (new_w, new_h), Image.Resampling.LANCZOS, reducing_gap=3.0), dtype=np.float64).clip(0, None)
    peak = small.max()
    small = small / peak if peak > 0 else small  # the data set's items use the full 0-255 range
    canvas = np.zeros((28, 28), np.uint8)
    # an odd spare pixel goes before the item, as the data set's centring does (test images 0-19 agree)
    y0, x0 = (29 - new_h) // 2, (29 - new_w) // 2
    canvas[y0:y0 + new_h, x0:x0 + new_w] = (small * 255).round().astype(np.uint8)

    if info["found"]:  # the item's visible box in the original picture's pixels (before the tilt was undone)
        seen = mask & (intensity > VISIBLE_SHARE * intensity.max())
        ys, xs = np.nonzero(seen if seen.any() else mask)
        box = tuple(int(round(v / scale)) for v in (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1))
        box = (box[0], box[1], min(box[2], original_size[0]), min(box[3], original_size[1]))
    else:
        box = (0, 0, *original_size)
    touches = bool(mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any())
    return Preprocessed(canvas, inverted=info["light_backdrop"], box=box, found_item=info["found"],
                        items=info["items"], touches_all_sides=touches,
                        aspect=float(max(ch, cw) / max(1, min(ch, cw))), tilt_deg=tilt,
                        fill=float(mask.mean()), view=(rgb * 255).round().astype(np.uint8), mask=mask)


def outline(pre: Preprocessed, colour=(255, 40, 40)) -> Image.Image:
    """The picture at working size with the found item's outline and box drawn on it."""
    from scipy import ndimage as ndi

    view = pre.view.copy()
    if pre.found_item and pre.mask is not None:
        edge = pre.mask & ~ndi.binary_erosion(pre.mask, iterations=2)
        view[edge] = colour
    image = Image.fromarray(view)
    if pre.found_item and pre.mask is not None:
        ys, xs = np.nonzero(pre.mask)
        ImageDraw.Draw(image).rectangle((xs.min(), ys.min(), xs.max(), ys.max()), outline=(40, 160, 255), width=2)
    return image
