"""Phone-like pictures of Fashion-MNIST items: the first renderer (`scenes`).

A Fashion-MNIST image is the negative of a product photo on white (shared/FASHION_MNIST_FACTS.md), so
an item's grey in a photo is 1 - pixel / 255. `render_photo` puts that item back into a scene, at three
levels:
- clean: a white backdrop, shop style, the item large and centred;
- everyday: an off-white, grey or tinted backdrop, a lighting gradient (linear or radial), a soft shadow,
  a coloured garment, camera noise and JPEG;
- hard: everyday, plus a tilt up to 15 degrees, fabric texture, a 3-12 MP canvas, and an item that is
  small (15-35 % of the short side) and off-centre;
- pale: a pale or white garment (mint, pink, cream, sky, lilac, light grey, white) on a white or light-grey
  backdrop: the item's greys are only a faint shading of its colour, so its body barely differs from the
  backdrop; sometimes a soft shadow, camera noise and JPEG.
Every parameter is drawn from a wide range, and each scene mixes several independent choices (backdrop
tone and tint, gradient shape and direction, shadow direction and softness, garment colour, texture kind,
opaque or semi-transparent light fabric, noise, JPEG quality), so that no single generator is what the
pipeline is tuned to.

"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

LEVELS = ("clean", "everyday", "hard", "pale")


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    return Image.open(buf)


def _backdrop(h: int, w: int, level: str, rng: np.random.Generator) -> np.ndarray:
    """(h, w, 3) float backdrop: white for clean; otherwise a tone, a tint and a lighting gradient."""
    if level == "clean":
        return np.full((h, w, 3), rng.uniform(0.95, 1.0))
    if level == "pale":  # white or light grey, nearly neutral, with a gentle fall-off of the light
        tone = rng.uniform(0.95, 1.0) if rng.random() < 0.5 else rng.uniform(0.8, 0.92)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        fall = 1 - rng.uniform(0, 0.08) * (((yy / h - 0.5) ** 2 + (xx / w - 0.5) ** 2) * 4)
        return np.clip(tone * (1 + rng.uniform(-0.015, 0.015, 3))[None, None, :] * fall[..., None], 0, 1)
    tone = rng.uniform(0.55, 0.95)
    tint = 1 + rng.uniform(-0.06, 0.06, 3)  # warm, cool or neutral
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / h - 0.5, xx / w - 0.5
    strength = rng.uniform(0.08, 0.3)
    if rng.random() < 0.5:  # a window to one side: a linear ramp
        a = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(a) * xx + np.sin(a) * yy) * strength * 2
    else:  # a lamp above: a radial fall-off
        cy, cx = rng.uniform(-0.3, 0.3, 2)
        ramp = -((xx - cx) ** 2 + (yy - cy) ** 2) * strength * 3
    return np.clip(tone * tint[None, None, :] * (1 + ramp[..., None]), 0, 1)


def _garment_colour(level: str, rng: np.random.Generator) -> np.ndarray:
    if level == "pale":  # a pastel or white: low saturation, high value
        import colorsys

        return np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.3), rng.uniform(0.9, 1.0)))
    if level == "clean" or rng.random() < 0.2:
        return np.ones(3)  # the item's own greys
    import colorsys

    return np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.2, 0.9), rng.uniform(0.55, 1.0)))


def _texture(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A multiplicative fabric texture around 1: a weave, stripes or blotchy knit."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = rng.integers(3)
    period = rng.uniform(3, 9)
    if kind == 0:
        t = np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)
    elif kind == 1:
        a = rng.uniform(0, np.pi)
        t = np.sign(np.sin(2 * np.pi * (np.cos(a) * xx + np.sin(a) * yy) / (3 * period)))
    else:
        t = (
            np.asarray(
                Image.fromarray((rng.random((max(1, h // 6), max(1, w // 6))) * 255).astype(np.uint8)).resize(
                    (w, h), Image.Resampling.BICUBIC
                ),
                np.float32,
            )
            / 127.5
            - 1
        )
    return 1 + rng.uniform(0.05, 0.15) * t


def render_photo(
    item28: np.ndarray, level: str, rng: np.random.Generator, megapixels: float | None = None
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A picture of one Fashion-MNIST item (28x28 uint8, light on black) at a level; returns the picture and
    the item's true box (left, top, right, bottom) in its pixels. megapixels fixes the canvas size."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    hard = level == "hard"
    fixed = megapixels
    if hard:
        megapixels = rng.uniform(3, 12)
        aspect = rng.choice([4 / 3, 3 / 2, 16 / 9])
    else:
        megapixels = rng.uniform(0.5, 2.0)
        aspect = rng.choice([1.0, 4 / 3, 3 / 2])
    if fixed is not None:
        megapixels, aspect = fixed, 4 / 3
    full_w = int(np.sqrt(megapixels * 1e6 * aspect))
    full_h = int(full_w / aspect)
    if rng.random() < 0.5 and not hard and fixed is None:
        full_w, full_h = full_h, full_w  # portrait
    # the scene is drawn at a working scale and enlarged at the end (a 12 MP numpy scene is slow to draw);
    # noise is added at the working scale, so it is spatially correlated, as a phone's denoised noise is
    draw_scale = min(1.0, 1600 / max(full_w, full_h))
    w, h = int(full_w * draw_scale), int(full_h * draw_scale)

    item_frac = rng.uniform(0.15, 0.35) if hard else rng.uniform(0.45, 0.75)
    side = int(item_frac * min(w, h))
    p = Image.fromarray(item28).resize((side, side), Image.Resampling.BICUBIC)
    if hard:
        p = p.rotate(rng.uniform(-15, 15), resample=Image.Resampling.BICUBIC, expand=True)
    pa = np.asarray(p, np.float32) / 255.0
    if rng.random() < 0.5:  # light fabric drawn semi-transparent: what lies under it (a shadow) shows through
        alpha = np.clip(pa * 6, 0, 1)
    else:  # opaque fabric, as a real garment: the whole silhouette, holes filled, a soft outer edge only
        from scipy import ndimage as ndi

        solid = ndi.binary_fill_holes(pa > 0.02).astype(np.float32)
        alpha = (
            np.asarray(
                Image.fromarray((solid * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(side / 200)), np.float32
            )
            / 255.0
        )
    grey = 1 - pa  # the product photo's grey
    if level == "pale":  # a pale fabric: the item's greys only shade it a little (a dark print turns pale too)
        grey = 1 - rng.uniform(0.08, 0.35) * pa
    ih, iw = pa.shape
    if hard:
        cy, cx = rng.uniform(0.2, 0.8) * h, rng.uniform(0.2, 0.8) * w
    else:
        cy, cx = h / 2 + rng.uniform(-0.08, 0.08) * h, w / 2 + rng.uniform(-0.08, 0.08) * w
    top = int(np.clip(cy - ih / 2, 0, h - ih))
    left = int(np.clip(cx - iw / 2, 0, w - iw))

    scene = _backdrop(h, w, level, rng)
    # a soft shadow beside the item (on half the pale pictures): the alpha blurred, offset, darkening the backdrop
    if level != "clean" and (level != "pale" or rng.random() < 0.5):
        blur = rng.uniform(0.03, 0.08) * side
        shadow = (
            np.asarray(
                Image.fromarray((alpha * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur)), np.float32
            )
            / 255.0
        )
        dy, dx = (rng.uniform(0.03, 0.1) * side * np.array([np.sin(a := rng.uniform(0, 2 * np.pi)), np.cos(a)])).astype(
            int
        )
        sy, sx = np.clip(top + dy, 0, h - ih), np.clip(left + dx, 0, w - iw)
        scene[sy : sy + ih, sx : sx + iw] *= (1 - rng.uniform(0.15, 0.35) * shadow)[..., None]
    colour = _garment_colour(level, rng)
    garment = grey[..., None] * colour[None, None, :]
    if hard:
        garment = garment * _texture(ih, iw, rng)[..., None]
    if level != "clean":
        garment = garment * scene[top : top + ih, left : left + iw].mean((0, 1)) / scene.mean((0, 1))  # same light
    region = scene[top : top + ih, left : left + iw]
    scene[top : top + ih, left : left + iw] = (
        alpha[..., None] * np.clip(garment, 0, 1) + (1 - alpha[..., None]) * region
    )
    if level != "clean":
        scene = scene + rng.normal(0, rng.uniform(0.005, 0.03), scene.shape)
    image = Image.fromarray((np.clip(scene, 0, 1) * 255).round().astype(np.uint8))
    if draw_scale < 1:
        image = image.resize((full_w, full_h), Image.Resampling.BICUBIC)
    if level != "clean":
        image = _jpeg(image, rng.integers(60, 92))
    ys, xs = np.nonzero(alpha > 0.5)
    box = tuple(
        int(round(v / draw_scale)) for v in (left + xs.min(), top + ys.min(), left + xs.max() + 1, top + ys.max() + 1)
    )
    return image, box
