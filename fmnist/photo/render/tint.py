"""Renderer "tint": shop-style shots of a Fashion-MNIST item whose shading is multiplied by a fabric colour.

Written on its own, apart from photo_scenes.py and the other renderers, so that the photo benchmark does not
measure one generator. This one works in *linear light*: the item's product-photo grey (1 - pixel / 255,
shared/FASHION_MNIST_FACTS.md) is decoded from sRGB, multiplied by a colour from a named palette (pale,
saturated, dark and neutral fabrics), lit by an exposure and a white balance, then encoded to sRGB as a
camera would. Levels:
- clean: a seamless white studio backdrop, the item large and centred, a high JPEG quality;
- everyday: a light-grey or off-white sweep with a vignette, a contact shadow under the item, sensor noise;
- hard: a smaller, off-centre, tilted item, a dimmer and colour-cast light, a little blur, 4-12 MP;
- pale: a pale or white fabric on a white seamless or a light-grey sweep; the item's shop-photo grey is lifted
  towards white (a light fabric shows only a faint shading, whatever the data-set item's own darkness).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

LEVELS = ("clean", "everyday", "hard", "pale")

# sRGB colours of fabrics, by family: the pale ones are what lost their body on white
PALETTE = {
    "pale": [(170, 240, 210), (250, 200, 215), (215, 215, 215), (245, 235, 205), (190, 215, 245), (230, 210, 250)],
    "saturated": [
        (0, 190, 220),
        (30, 170, 60),
        (210, 30, 40),
        (245, 200, 20),
        (30, 60, 200),
        (200, 40, 170),
        (250, 120, 20),
    ],
    "dark": [(25, 35, 80), (20, 20, 22), (110, 20, 40), (80, 90, 40), (90, 55, 30)],
    "neutral": [(255, 255, 255), (150, 150, 150), (200, 190, 175)],
}


def _to_linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def _to_srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0, 1)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


def _fabric(rng: np.random.Generator) -> np.ndarray:
    family = rng.choice(list(PALETTE))
    options = PALETTE[family]
    jitter = rng.normal(0, 8, 3)
    return np.clip(np.array(options[int(rng.integers(len(options)))]) + jitter, 0, 255) / 255.0


def render(item28: np.ndarray, level: str, rng: np.random.Generator) -> Image.Image:
    """One picture of a 28x28 item (uint8, light on black) at a level."""
    from scipy import ndimage as ndi

    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    mp = {"clean": (0.6, 1.5), "everyday": (1.0, 3.0), "hard": (4.0, 12.0), "pale": (0.6, 3.0)}[level]
    full_w = int(np.sqrt(rng.uniform(*mp) * 1e6 * 3 / 4))
    full_h = int(full_w * 4 / 3) if rng.random() < 0.5 else int(full_w * 3 / 4)
    scale = min(1.0, 1400 / max(full_w, full_h))  # drawn at most 1400 px, enlarged at the end
    w, h = int(full_w * scale), int(full_h * scale)

    frac = {"clean": (0.7, 0.85), "everyday": (0.5, 0.75), "hard": (0.25, 0.45), "pale": (0.55, 0.85)}[level]
    side = int(rng.uniform(*frac) * min(w, h))
    item = Image.fromarray(item28).resize((side, side), Image.Resampling.LANCZOS)
    if level == "hard":
        item = item.rotate(rng.uniform(-12, 12), Image.Resampling.BILINEAR, expand=True)
    pa = np.clip(np.asarray(item, np.float64) / 255.0, 0, 1)
    solid = ndi.binary_fill_holes(ndi.binary_closing(pa > 0.03, iterations=2))
    alpha = ndi.gaussian_filter(solid.astype(float), 0.6)
    if level == "pale":
        colours = PALETTE["pale"] + [(255, 255, 255), (240, 238, 232)]
        fabric = np.clip(np.array(colours[int(rng.integers(len(colours)))]) + rng.normal(0, 5, 3), 0, 255) / 255.0
        fabric_lin = _to_linear(fabric)
        shading_lin = _to_linear(1.0 - rng.uniform(0.1, 0.4) * pa)  # light fabric: only its folds and print shade it
    else:
        fabric_lin = _to_linear(_fabric(rng))
        shading_lin = _to_linear(1.0 - pa)  # the shop photo's grey, as light
    garment = shading_lin[..., None] * fabric_lin[None, None, :]

    # the studio: white, or a light sweep with a vignette
    yy, xx = np.mgrid[0:h, 0:w]
    r2 = ((yy - h / 2) / h) ** 2 + ((xx - w / 2) / w) ** 2
    if level == "clean" or (level == "pale" and rng.random() < 0.5):
        back = np.full((h, w, 3), _to_linear(rng.uniform(0.96, 1.0)))
    else:
        tone = _to_linear(np.array([rng.uniform(0.82, 0.97)] * 3) + rng.uniform(-0.02, 0.02, 3))
        back = tone[None, None, :] * (1 - rng.uniform(0.1, 0.35) * r2)[..., None]
    ih, iw = pa.shape
    if level == "hard":
        top, left = int(rng.uniform(0.1, 0.9) * (h - ih)), int(rng.uniform(0.1, 0.9) * (w - iw))
    else:
        top, left = (h - ih) // 2 + int(rng.integers(-h // 30, h // 30 + 1)), (w - iw) // 2
    # a contact shadow (on half the pale pictures): the silhouette, pushed down a little and blurred
    if level in ("everyday", "hard") or (level == "pale" and rng.random() < 0.5):
        shadow = np.zeros((h, w))
        dy = int(rng.uniform(0.01, 0.04) * ih)
        shadow[top + dy : top + dy + ih, left : left + iw] = solid[: min(ih, h - top - dy)]
        shadow = ndi.gaussian_filter(shadow, rng.uniform(0.01, 0.03) * side)
        back = back * (1 - rng.uniform(0.2, 0.45) * shadow)[..., None]
    region = back[top : top + ih, left : left + iw]
    back[top : top + ih, left : left + iw] = alpha[..., None] * garment + (1 - alpha[..., None]) * region

    # the camera: exposure and white balance, then noise in linear light, then sRGB
    # (every value of the dict is drawn, whatever the level; the pale one is drawn after it, on its own)
    exposure = {"clean": 1.0, "everyday": rng.uniform(0.85, 1.05), "hard": rng.uniform(0.6, 0.9), "pale": 1.0}[level]
    if level == "pale":
        exposure = rng.uniform(0.9, 1.05)
    balance = np.ones(3) if level == "clean" else 1 + rng.uniform(-0.06, 0.06, 3)
    lin = back * exposure * balance[None, None, :]
    if level != "clean":
        lin = lin + rng.normal(0, 1, lin.shape) * np.sqrt(lin * rng.uniform(1e-4, 6e-4) + 1e-6)
    picture = Image.fromarray((_to_srgb(lin) * 255).round().astype(np.uint8))
    if level == "hard":
        picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    if scale < 1:
        picture = picture.resize((full_w, full_h), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    picture.save(buf, "JPEG", quality=int({"clean": 95, "everyday": 88, "hard": 78, "pale": 90}[level]))
    return Image.open(io.BytesIO(buf.getvalue()))
