"""What the model sees of a found item: its intensity against the backdrop (the data set's negated grey), without
wires thinner than any item, and the small tilt to undo."""

from __future__ import annotations

import numpy as np

from fmnist.photo import morph

MAX_TILT_DEG = 30  # larger turns are not undone; 30 against 20 on items turned up to 30 degrees (validation, resnet):
# scenes/tint/opaque everyday 87.3/89.3/84.7 -> 87.3/91.3/86.0 %, upright items 93.3/93.3/88.7 -> 93.3/93.3/88.0 %
# (benchmarks/results/photos-val-{tilt30,upright}-max{20,30}-cpu.json, 150 items a cell)
VISIBLE_SHARE = 0.04  # item pixels fainter than this share of the brightest one do not widen the crop
WIRE_WIDTH = 0.7  # lines thinner than this many pixels of the 28x28 result are not the item (hangers)
COLOUR_FLOOR = 0.3  # colour's share of the intensity where the grey level shows nothing (item_intensity)


def without_wires(mask: np.ndarray, intensity: np.ndarray) -> np.ndarray:
    """The mask without what is thinner than WIRE_WIDTH pixels of the 28x28 result: a hanger's wire and
    hook, a string, a cable. No part of a data-set item is that thin. Measured on the visible pixels (the
    mask itself is a little wider than what it found); an item that is all thin lines (a white garment found
    by its outline alone) is left as it is."""
    from skimage.morphology import disk

    visible = mask & (intensity > VISIBLE_SHARE * intensity.max())
    if not visible.any():
        return mask
    ys, xs = np.nonzero(visible)
    radius = int(round(WIRE_WIDTH * (max(np.ptp(ys), np.ptp(xs)) + 1) / 28 / 2))
    if radius < 1:
        return mask
    opened = morph.opening(visible, disk(radius))
    if opened.sum() < 0.5 * visible.sum():
        return mask
    # what survives, and the mask pixels next to it (the item's dim inside and edge), but no wire
    return mask & morph.dilate(opened, disk(2 * radius))


def box_areas(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(angles within MAX_TILT_DEG, 1 degree apart; the area of the item's axis-aligned box when turned by each),
    or None for a mask too small or too flat to have a hull."""
    ys, xs = np.nonzero(mask)
    if len(ys) < 20:
        return None
    from scipy.spatial import ConvexHull, QhullError

    pts = np.stack([xs, ys], 1).astype(float)
    try:
        pts = pts[ConvexHull(pts).vertices]
    except QhullError:
        return None
    angles = np.arange(-MAX_TILT_DEG, MAX_TILT_DEG + 0.5, 1.0)
    rad = np.radians(angles)
    rx = pts[:, 0:1] * np.cos(rad) - pts[:, 1:2] * np.sin(rad)  # (P, A)
    ry = pts[:, 0:1] * np.sin(rad) + pts[:, 1:2] * np.cos(rad)
    return angles, np.ptp(rx, 0) * np.ptp(ry, 0)


def best_tilt(mask: np.ndarray) -> float:
    """The rotation (degrees, within MAX_TILT_DEG) that makes the item's axis-aligned box smallest, or 0
    when no rotation shrinks it by more than 3 %: an upright item is left alone."""
    measured = box_areas(mask)
    if measured is None:
        return 0.0
    angles, area = measured
    best = int(np.argmin(area))
    upright = area[len(angles) // 2]
    return float(angles[best]) if area[best] < 0.97 * upright else 0.0


def darker_than_backdrop(info: dict, mask: np.ndarray | None = None) -> bool:
    """The item's side, where most of its contrast lies, on any backdrop: a navy coat on a dark wood floor is
    darker still; a white shirt on a light-grey table is lighter. Without a mask, darker on a light backdrop."""
    if mask is None or not mask.any():
        return bool(info["light_backdrop"])
    diff = (info["grey"] - np.clip(info["backdrop_grey"], 0.0, 1.0))[mask]
    return bool(np.clip(-diff, 0, None).sum() > np.clip(diff, 0, None).sum())


def item_intensity(rgb: np.ndarray, info: dict, mask: np.ndarray | None = None) -> np.ndarray:
    """How much the item stands out from the backdrop, in [0, 1], by its grey level, as the data set's
    conversion did (8-bit grey of the photo, negated): how much darker than the backdrop it is, as in a shop
    photo; where most of the item is lighter than a light backdrop (a pale garment on a light-grey table), how
    dark it is against white, as the same garment on a shop's white backdrop would be; and where it is lighter
    than a dark one (a white shirt on a dark floor, a data-set image), how much lighter. A saturated green shirt
    is a mid grey with its shading, not a flat silhouette.

    Colour serves the mask; here it only gives a faint floor (COLOUR_FLOOR of its strength), so that an item
    of the backdrop's own grey (a red shirt on a grey table) is not empty, while the grey's shading, folds
    and print still decide what the model sees wherever there is any."""
    # in grey code values, as the data set's 8-bit greys: a data-set image (item on black) passes unchanged
    grey, back = info["grey"], np.clip(info["backdrop_grey"], 0.0, 1.0)
    if darker_than_backdrop(info, mask):
        contrast = (back - grey) / np.maximum(back, 0.1)
    elif info["light_backdrop"]:
        # lighter than a light backdrop (a pale shirt on a light-grey table): its darkness against white, as the
        # data set's negated shop photo on white shows a light garment (a dim body, its seams, folds and print
        # brighter), not its lightness above the backdrop, which turns those around (python -m lab.light_items)
        contrast = 1.0 - grey
    else:  # light on a dark backdrop is read as a negative already, as the data set's own images are
        contrast = (grey - back) / np.maximum(1.0 - back, 0.1)
    return np.maximum(np.clip(contrast, 0, 1), COLOUR_FLOOR * np.clip(info["d_chroma"] / 1.5, 0, 1))
