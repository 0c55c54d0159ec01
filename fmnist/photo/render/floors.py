"""Light garments on dark floors: a fifth renderer, for the rendered training data only (`floors`).

A white shirt photographed on a dark wooden floor, a navy bed cover or a slate table is lighter than what it
lies on, the other way round from the data set's shop photos, so the pipeline reads it by how much lighter it
is, and its darker print, folds and seams come out darker than its body. The other renderers draw such pictures
seldom (only `pattern` lays light garments on dark surfaces), so the photo data builder draws a share of its
items here (python -m fmnist.photo.build --floor-share). It is not one of RENDERERS: the photo benchmark does not
draw it, and `python -m benchmarks.dark_floors`, written apart from it, measures what it teaches.

- the floor: stained wood planks, a woven cover, stone or a carpet, value 0.03-0.4, of any hue at low to middle
  saturation, lit from one side with a fall-off to the corners;
- the garment: value 0.6-1, saturation 0-0.6, shaded by the item's greys (15-70 % at the darkest), opaque, or now
  and then thin enough for the floor to show through its faintest parts; a soft shadow on the floor;
- two levels: `everyday` (the item large, near the centre) and `hard` (small, off-centre, turned up to 15
  degrees, a 3-8 MP canvas), both with camera noise and JPEG.
"""

from __future__ import annotations

import colorsys
import io

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage as ndi

LEVELS = ("everyday", "hard")


def _floor(yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A multiplicative texture around 1 of one of four floor kinds, on the picture's pixel grid (yy, xx)."""
    h, w = yy.shape
    kind = rng.integers(4)
    if kind == 0:  # planks: bands along one axis with a grain inside each
        plank = rng.uniform(0.12, 0.3) * min(h, w)
        along, across = (xx, yy) if rng.random() < 0.5 else (yy, xx)
        band = np.floor(across / plank)
        shade = rng.uniform(-0.15, 0.15, int(band.max()) + 2)[band.astype(int)]
        grain = np.sin(across / rng.uniform(2, 6) + 0.8 * np.sin(along / rng.uniform(30, 90))) * rng.uniform(0.03, 0.1)
        seam = (across % plank < max(1.0, plank * 0.02)) * -0.3
        t = shade + grain + seam
    elif kind == 1:  # a woven cover: a fine two-way weave
        period = rng.uniform(2, 5)
        t = 0.08 * np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)
    else:  # stone (coarse blotches) or carpet (fine speckle): smoothed noise at one of two scales
        cell = rng.uniform(20, 60) if kind == 2 else rng.uniform(1.5, 3)
        small = rng.random((max(2, int(h / cell)), max(2, int(w / cell))))
        t = (
            np.asarray(
                Image.fromarray((small * 255).astype(np.uint8)).resize((w, h), Image.Resampling.BICUBIC), np.float32
            )
            / 255
            - 0.5
        ) * rng.uniform(0.15, 0.4)
    return 1 + t


def _blurred(mask: np.ndarray, radius: float) -> np.ndarray:
    """A [0, 1] mask blurred by a Gaussian of that radius (in pixels)."""
    return (
        np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius)), np.float32)
        / 255
    )


def _jpeg(scene: np.ndarray, quality: int) -> Image.Image:
    buf = io.BytesIO()
    Image.fromarray((np.clip(scene, 0, 1) * 255).round().astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf)


def render(item28: np.ndarray, level: str, rng: np.random.Generator) -> Image.Image:
    """A picture of one Fashion-MNIST item (28x28 uint8, light on black) as a light garment on a dark floor."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    hard = level == "hard"
    pixels = rng.uniform(3e6, 8e6) if hard else rng.uniform(0.4e6, 1.5e6)
    aspect = rng.choice([1.0, 4 / 3, 3 / 2, 3 / 4, 2 / 3])
    w, h = int(np.sqrt(pixels * aspect)), int(np.sqrt(pixels / aspect))
    scale = min(1.0, 1400 / max(w, h))  # drawn at a working scale, enlarged at the end
    dw, dh = int(w * scale), int(h * scale)

    side = int((rng.uniform(0.2, 0.4) if hard else rng.uniform(0.45, 0.8)) * min(dw, dh))
    item = Image.fromarray(item28).resize((side, side), Image.Resampling.BICUBIC)
    if hard:
        item = item.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BICUBIC, expand=True)
    pa = np.asarray(item, np.float32) / 255
    alpha = _blurred(ndi.binary_fill_holes(pa > 0.03).astype(np.float32), side / 250)
    if rng.random() < 0.2:  # a thin fabric: its faintest parts let the floor through
        alpha = alpha * np.clip(0.6 + pa * 3, 0, 1)
    ih, iw = pa.shape
    cy = (rng.uniform(0.25, 0.75) if hard else 0.5 + rng.uniform(-0.08, 0.08)) * dh
    cx = (rng.uniform(0.25, 0.75) if hard else 0.5 + rng.uniform(-0.08, 0.08)) * dw
    top, left = int(np.clip(cy - ih / 2, 0, dh - ih)), int(np.clip(cx - iw / 2, 0, dw - iw))

    yy, xx = np.mgrid[0:dh, 0:dw].astype(np.float32)
    a = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0.05, 0.3) * ((np.cos(a) * xx / dw + np.sin(a) * yy / dh) - 0.5)
    light = light * (1 - rng.uniform(0, 0.25) * ((xx / dw - 0.5) ** 2 + (yy / dh - 0.5) ** 2) * 2)
    floor = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.6), rng.uniform(0.03, 0.4)), np.float32)
    scene = floor[None, None] * _floor(yy, xx, rng)[..., None] * light[..., None]

    shadow = _blurred(alpha, rng.uniform(0.02, 0.07) * side)  # the garment's soft shadow, a little to one side
    b = rng.uniform(0, 2 * np.pi)
    sy = int(np.clip(top + np.sin(b) * rng.uniform(0.02, 0.06) * side, 0, dh - ih))
    sx = int(np.clip(left + np.cos(b) * rng.uniform(0.02, 0.06) * side, 0, dw - iw))
    scene[sy : sy + ih, sx : sx + iw] *= (1 - rng.uniform(0.2, 0.5) * shadow)[..., None]

    colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.6), rng.uniform(0.6, 1.0)), np.float32)
    fabric = (1 - rng.uniform(0.15, 0.7) * pa)[..., None] * colour[None, None]
    fabric = fabric * light[top : top + ih, left : left + iw, None]
    region = scene[top : top + ih, left : left + iw]
    scene[top : top + ih, left : left + iw] = alpha[..., None] * fabric + (1 - alpha[..., None]) * region
    scene = scene + rng.normal(0, rng.uniform(0.004, 0.025), scene.shape)
    image = _jpeg(scene, int(rng.integers(60, 93)))
    return image.resize((w, h), Image.Resampling.BICUBIC) if scale < 1 else image
