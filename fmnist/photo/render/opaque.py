"""Renderer "opaque": a garment of one flat colour, shaded, lying on a coloured surface.

Written on its own, apart from photo_scenes.py and the other renderers. The item's silhouette is filled
with an opaque colour drawn in HSV (any hue, any lightness). Its details do not come through as the item's
own greys but as *shading* of that colour: the item's pixels darken the colour around its mean (they are the
negative of its shop photo), by a random strength, plus broad folds and a darker seam along the outline. The
surface is a colour of its own (light, mid or dark, muted or vivid) under a directional light, and the lamp
casts a hard-edged shadow.
Levels:
- clean: a pale surface, even light, the item centred and large;
- everyday: any surface colour, a light gradient, a cast shadow, noise, JPEG;
- hard: everyday, plus a small off-centre item turned up to 20 degrees, a soft focus and a 4-12 MP frame;
- pale: a pastel or white garment, faintly shaded, with a faint seam, on a white or light-grey surface under
  even light; a hard shadow on half of them.
"""

from __future__ import annotations

import colorsys
import io

import numpy as np
from PIL import Image, ImageFilter

LEVELS = ("clean", "everyday", "hard", "pale")


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1))))


def _surface(level: str, rng: np.random.Generator) -> np.ndarray:
    if level == "clean":
        return _hsv(rng.random(), rng.uniform(0, 0.08), rng.uniform(0.88, 1.0))
    if level == "pale":  # white or light grey
        value = rng.uniform(0.95, 1.0) if rng.random() < 0.5 else rng.uniform(0.78, 0.9)
        return _hsv(rng.random(), rng.uniform(0, 0.05), value)
    kind = rng.integers(3)
    if kind == 0:  # pale
        return _hsv(rng.random(), rng.uniform(0, 0.25), rng.uniform(0.75, 1.0))
    if kind == 1:  # mid, muted
        return _hsv(rng.random(), rng.uniform(0, 0.35), rng.uniform(0.4, 0.75))
    return _hsv(rng.random(), rng.uniform(0.2, 0.9), rng.uniform(0.1, 0.45))  # dark or vivid


def _fold_field(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Broad random folds in [-1, 1]: a coarse random grid, smoothly enlarged."""
    coarse = rng.uniform(-1, 1, (4, 4)).astype(np.float32)
    return np.asarray(Image.fromarray(coarse, mode="F").resize((w, h), Image.Resampling.BICUBIC)).clip(-1, 1)


def render(item28: np.ndarray, level: str, rng: np.random.Generator) -> Image.Image:
    from scipy import ndimage as ndi

    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    if level == "hard":
        long_side = int(np.sqrt(rng.uniform(4, 12) * 1e6 * 16 / 9))
        W, H = (long_side, long_side * 9 // 16) if rng.random() < 0.5 else (long_side * 9 // 16, long_side)
    else:
        W = H = int(rng.uniform(700, 1400))
    k = min(1.0, 1200 / max(W, H))
    w, h = int(W * k), int(H * k)

    size = int(min(w, h) * (rng.uniform(0.2, 0.4) if level == "hard" else rng.uniform(0.5, 0.8)))
    im = Image.fromarray(item28).resize((size, size), Image.Resampling.BICUBIC)
    if level == "hard":
        im = im.rotate(rng.uniform(-20, 20), Image.Resampling.BICUBIC, expand=True)
    detail = np.asarray(im, np.float32) / 255.0
    body = ndi.binary_fill_holes(detail > 0.05)
    body = ndi.binary_opening(body, iterations=1) | (detail > 0.3)
    edge = (
        np.asarray(Image.fromarray((body * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8)), np.float32)
        / 255.0
    )

    # the garment: an opaque colour shaded by the item's details, folds and a seam
    pale = level == "pale"  # a pastel or white garment, only faintly shaded by its details
    colour = (
        _hsv(rng.random(), rng.uniform(0, 0.3), rng.uniform(0.88, 1.0))
        if pale
        else _hsv(rng.random(), rng.uniform(0, 1), rng.uniform(0.15, 1.0))
    )
    ih, iw = detail.shape
    inside = detail[body]
    mean = float(inside.mean()) if inside.size else 0.0
    strength = rng.uniform(0.08, 0.3) if pale else rng.uniform(0.25, 0.7)
    # the item's greys are the negative of its shop photo: where they are high, the fabric is darker
    light = 1 - strength * (detail - mean) + rng.uniform(0.03, 0.12) * _fold_field(ih, iw, rng)
    seam = ndi.distance_transform_edt(body)
    light = light * (1 - (rng.uniform(0.03, 0.15) if pale else 0.25) * np.exp(-seam / max(1.0, 0.01 * size)))
    garment = np.clip(colour[None, None, :] * light[..., None], 0, 1)

    # the surface under a directional light
    surface = _surface(level, rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if level in ("clean", "pale"):
        shade = np.ones((h, w), np.float32)
    else:
        a = rng.uniform(0, 2 * np.pi)
        shade = 1 + rng.uniform(0.05, 0.25) * (np.cos(a) * (xx / w - 0.5) + np.sin(a) * (yy / h - 0.5)) * 2
    scene = np.clip(surface[None, None, :] * shade[..., None], 0, 1)
    if level == "hard":
        y0, x0 = int(rng.uniform(0.05, 0.95) * (h - ih)), int(rng.uniform(0.05, 0.95) * (w - iw))
    else:
        y0, x0 = (
            (h - ih) // 2 + int(rng.integers(-h // 20, h // 20 + 1)),
            (w - iw) // 2 + int(rng.integers(-w // 20, w // 20 + 1)),
        )
    y0, x0 = int(np.clip(y0, 0, h - ih)), int(np.clip(x0, 0, w - iw))
    if level != "clean" and (not pale or rng.random() < 0.5):  # a lamp's hard shadow, offset to one side
        dy, dx = (rng.uniform(0.02, 0.07, 2) * size * rng.choice([-1, 1], 2)).astype(int)
        sy, sx = int(np.clip(y0 + dy, 0, h - ih)), int(np.clip(x0 + dx, 0, w - iw))
        scene[sy : sy + ih, sx : sx + iw] *= (1 - rng.uniform(0.2, 0.5) * edge)[..., None]
    patch = scene[y0 : y0 + ih, x0 : x0 + iw]
    scene[y0 : y0 + ih, x0 : x0 + iw] = edge[..., None] * garment + (1 - edge[..., None]) * patch
    if level != "clean":
        scene = scene + rng.normal(0, rng.uniform(0.004, 0.02), (h, w, 1))  # luminance noise
    picture = Image.fromarray((np.clip(scene, 0, 1) * 255).round().astype(np.uint8))
    if level == "hard":
        picture = picture.filter(ImageFilter.BoxBlur(rng.uniform(0.5, 1.5)))
    if k < 1:
        picture = picture.resize((W, H), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=int(rng.integers(70, 96)))
    return Image.open(io.BytesIO(out.getvalue()))
