"""Renderer "pattern": printed garments on textured floors, photographed from a hand-held phone.

Written on its own, apart from photo_scenes.py and the other renderers. One level, "textured":
- the floor is wood (grain and planks), tiles (a grid with grout), carpet (fine fibre noise) or a woven sheet,
  in a light or a dark colour;
- the garment carries a print, stripes, checks, dots or small flowers, in two colours, shaded by the item's
  own greys; light garments often lie on dark floors;
- sometimes it hangs from a wire hanger (a hook and a bar drawn above it);
- the phone is held at an angle (a keystone warp), the focus may be soft (a disc blur), and the JPEG is
  stored sideways or upside down with an EXIF orientation tag saying how to turn it upright.
A second level, "pale": the same phone and print, but a pastel or white garment whose print is pale too, on a
white or light-grey bed sheet or sheet of paper, and the item's greys only shade it faintly.
"""

from __future__ import annotations

import colorsys
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

LEVELS = ("textured", "pale")


def _rgb(h, s, v):
    return np.array(colorsys.hsv_to_rgb(h % 1, min(max(s, 0), 1), min(max(v, 0), 1)), np.float32)


def _smooth_noise(h, w, cells, rng):
    small = rng.random((max(2, h // cells), max(2, w // cells))).astype(np.float32)
    return np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.Resampling.BICUBIC))


def floor(h: int, w: int, dark: bool, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """(kind, (h, w, 3) float texture)."""
    kind = ["wood", "tiles", "carpet", "sheet"][int(rng.integers(4))]
    v = rng.uniform(0.12, 0.35) if dark else rng.uniform(0.6, 0.92)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "wood":
        base = _rgb(rng.uniform(0.05, 0.1), rng.uniform(0.35, 0.7), v)
        plank = max(8, int(rng.uniform(0.08, 0.2) * h))
        row = yy // plank
        grain = np.sin((xx * rng.uniform(0.01, 0.03) + row * 7.3 + 4 * _smooth_noise(h, w, 40, rng)) * 6)
        t = 1 + 0.12 * grain - 0.25 * ((yy % plank) < 2) + 0.08 * np.sin(row * 12.9)
    elif kind == "tiles":
        base = _rgb(rng.random(), rng.uniform(0, 0.5), v)
        tile = max(12, int(rng.uniform(0.1, 0.25) * min(h, w)))
        grout = ((yy % tile) < 3) | ((xx % tile) < 3)
        t = 1 + 0.05 * (_smooth_noise(h, w, 30, rng) - 0.5) - (0.35 if not dark else -0.6) * grout
    elif kind == "carpet":
        base = _rgb(rng.random(), rng.uniform(0.1, 0.6), v)
        fibre = (
            np.asarray(
                Image.fromarray((rng.random((h, w)) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.7)),
                np.float32,
            )
            / 255.0
        )
        t = 1 + 0.5 * (fibre - 0.5) + 0.1 * (_smooth_noise(h, w, 60, rng) - 0.5)
    else:  # a woven sheet: a fine cross weave and a few wrinkles
        base = _rgb(rng.random(), rng.uniform(0, 0.4), v)
        period = rng.uniform(3, 6)
        t = 1 + 0.06 * np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)
        t = t + 0.12 * (_smooth_noise(h, w, 80, rng) - 0.5)
    return kind, np.clip(base[None, None, :] * t[..., None], 0, 1)


def pale_backdrop(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """(h, w, 3): white or light grey, plain paper or a sheet with a faint weave and soft wrinkles."""
    v = rng.uniform(0.93, 1.0) if rng.random() < 0.5 else rng.uniform(0.78, 0.9)
    base = _rgb(rng.random(), rng.uniform(0, 0.04), v)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    t = 1 + 0.04 * (_smooth_noise(h, w, 90, rng) - 0.5)
    if rng.random() < 0.5:
        period = rng.uniform(3, 6)
        t = t + 0.02 * np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)
    return np.clip(base[None, None, :] * t[..., None], 0, 1)


def print_pattern(h: int, w: int, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """(kind, (h, w) pattern in [0, 1]): 1 where the second colour is printed."""
    kind = ["stripes", "checks", "dots", "florals"][int(rng.integers(4))]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    period = rng.uniform(0.04, 0.12) * max(h, w)
    if kind == "stripes":
        a = rng.choice([0, np.pi / 2, rng.uniform(0, np.pi)])
        p = (np.sin(2 * np.pi * (np.cos(a) * xx + np.sin(a) * yy) / period) > rng.uniform(-0.5, 0.5)).astype(np.float32)
    elif kind == "checks":
        p = ((xx // (period / 2) + yy // (period / 2)) % 2).astype(np.float32)
    else:
        canvas = Image.new("L", (w, h), 0)
        draw = ImageDraw.Draw(canvas)
        r = period * rng.uniform(0.15, 0.3)
        for cy in np.arange(rng.uniform(0, period), h, period):
            for cx in np.arange(rng.uniform(0, period), w, period):
                cx2 = cx + (period / 2 if int(cy / period) % 2 else 0)
                if kind == "dots":
                    draw.ellipse((cx2 - r, cy - r, cx2 + r, cy + r), fill=255)
                else:  # five petals round a centre
                    for k in range(5):
                        a = 2 * np.pi * k / 5 + cy
                        px, py = cx2 + r * np.cos(a), cy + r * np.sin(a)
                        draw.ellipse((px - r * 0.6, py - r * 0.6, px + r * 0.6, py + r * 0.6), fill=255)
        p = np.asarray(canvas, np.float32) / 255.0
    return kind, p


def _keystone(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A phone tilted towards the floor: one edge of the frame shrinks (a perspective warp)."""
    w, h = image.size
    d = rng.uniform(0.03, 0.12)
    quad = np.array([[0, 0], [w, 0], [w, h], [0, h]], float)
    side = int(rng.integers(4))
    quad[side] += np.array([[d * w, 0], [-d * w, 0], [0, -d * h], [0, d * h]])[side]
    quad[(side + 1) % 4] += np.array([[-d * w, 0], [d * w, 0], [0, d * h], [0, -d * h]])[side]
    corners = quad[[0, 3, 2, 1]]  # PIL's QUAD order: upper left, lower left, lower right, upper right
    return image.transform(
        (w, h),
        Image.Transform.QUAD,
        tuple(corners.ravel()),
        Image.Resampling.BILINEAR,
        fillcolor=tuple(int(c) for c in np.asarray(image)[h // 2, 0]),
    )


def _hanger(draw: ImageDraw.ImageDraw, x0: int, y0: int, width: int, colour, thick: int) -> None:
    """A wire hanger whose bar lies along y0 over [x0, x0 + width], with its hook above the middle."""
    mid = x0 + width // 2
    neck = y0 - width // 4
    draw.line((x0, y0, mid, neck), fill=colour, width=thick)
    draw.line((x0 + width, y0, mid, neck), fill=colour, width=thick)
    draw.line((x0, y0, x0 + width, y0), fill=colour, width=thick)
    r = width // 10
    draw.line((mid, neck, mid, neck - r), fill=colour, width=thick)
    draw.arc((mid - r, neck - 3 * r, mid + r, neck - r), 180, 90, fill=colour, width=thick)


def render(item28: np.ndarray, level: str, rng: np.random.Generator) -> Image.Image:
    from scipy import ndimage as ndi

    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}")
    w, h = (1200, 900) if rng.random() < 0.5 else (900, 1200)
    pale = level == "pale"
    dark = False if pale else rng.random() < 0.5
    scene = pale_backdrop(h, w, rng) if pale else floor(h, w, dark, rng)[1]
    size = int(min(h, w) * rng.uniform(0.35, 0.65))
    item = np.asarray(Image.fromarray(item28).resize((size, size), Image.Resampling.BICUBIC), np.float32) / 255.0
    body = ndi.binary_fill_holes(item > 0.04)
    alpha = ndi.gaussian_filter(body.astype(np.float32), 1.0)
    light_garment = dark and rng.random() < 0.7
    if pale:  # a pastel or white fabric with a print a little deeper in tone
        c1 = _rgb(rng.random(), rng.uniform(0, 0.3), rng.uniform(0.88, 1.0))
        c2 = _rgb(rng.random(), rng.uniform(0.1, 0.5), rng.uniform(0.65, 0.92))
    else:
        c1 = (
            _rgb(rng.random(), rng.uniform(0, 0.4), rng.uniform(0.8, 1.0))
            if light_garment
            else _rgb(rng.random(), rng.uniform(0, 1), rng.uniform(0.2, 1.0))
        )
        c2 = _rgb(rng.random(), rng.uniform(0.3, 1), rng.uniform(0.1, 0.9))
    _, pattern = print_pattern(size, size, rng)
    if rng.random() < 0.2:  # a plain garment now and then
        pattern[:] = 0
    fabric = c1[None, None, :] * (1 - pattern[..., None]) + c2[None, None, :] * pattern[..., None]
    depth = rng.uniform(0.1, 0.4) if pale else 0.75
    garment = fabric * (1 - depth * item)[..., None]  # the item's greys as shading: its darker photo parts
    top = int(rng.uniform(0.15, 0.85) * (h - size))
    left = int(rng.uniform(0.1, 0.9) * (w - size))
    # a shadow under the garment, then the garment
    shadow = ndi.shift(alpha, (size * 0.03, size * 0.03), order=0)
    shadow = ndi.gaussian_filter(shadow, size * 0.03)
    region = scene[top : top + size, left : left + size]
    region *= (1 - 0.35 * shadow)[..., None]
    scene[top : top + size, left : left + size] = alpha[..., None] * garment + (1 - alpha[..., None]) * region
    picture = Image.fromarray((np.clip(scene, 0, 1) * 255).astype(np.uint8))
    if rng.random() < 0.35:  # on a hanger: the bar across the garment's top, the hook above
        ys, xs = np.nonzero(body)
        draw = ImageDraw.Draw(picture)
        metal = (200, 200, 205) if dark else (40, 40, 45)
        _hanger(draw, left + int(xs.min()), top + int(ys.min()), int(np.ptp(xs)), metal, max(2, size // 60))
    if rng.random() < 0.7:
        picture = _keystone(picture, rng)
    if rng.random() < 0.5:  # soft focus: a disc blur
        r = rng.uniform(1.0, 3.5)
        k = int(np.ceil(r)) * 2 + 1
        yy, xx = np.mgrid[:k, :k] - k // 2
        disc = ((yy**2 + xx**2) <= r * r).astype(np.float32)
        disc /= disc.sum()
        arr = np.asarray(picture, np.float32)
        picture = Image.fromarray(
            np.stack([ndi.convolve(arr[..., c], disc) for c in range(3)], -1).round().clip(0, 255).astype(np.uint8)
        )
    arr = np.asarray(picture, np.float32) / 255.0
    arr = arr + rng.normal(0, rng.uniform(0.005, 0.02), arr.shape)
    picture = Image.fromarray((np.clip(arr, 0, 1) * 255).round().astype(np.uint8))
    # stored as a phone might: pixels turned, and the EXIF orientation that turns them upright
    orientation = int(rng.choice([1, 3, 6, 8]))
    stored = {
        1: picture,
        3: picture.transpose(Image.Transpose.ROTATE_180),
        6: picture.transpose(Image.Transpose.ROTATE_90),
        8: picture.transpose(Image.Transpose.ROTATE_270),
    }[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=int(rng.integers(75, 93)), exif=exif.tobytes())
    return Image.open(io.BytesIO(buf.getvalue()))
