"""Pictures that are not garments, of the kinds that slipped past the notice when it judged only the region it
found: a blurred digit drawn large, a scene whose one part has a garment's outline (a tower's base, a roof corner
cut by the edge), noise of every grain size, a small object at the picture's edge, and an animal on rock.

Written apart from `non_garments` and `things` (whose seeds 3-20 the detector learns from), with seeds of their
own: seeds 1 and 2 for choosing limits, seed 0 for the photo benchmark.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def _jpeg(img: Image.Image, rng: np.random.Generator) -> Image.Image:
    """As a phone stores it: a little noise, then JPEG."""
    arr = np.asarray(img.convert("RGB"), np.float32)
    arr += rng.normal(0, rng.uniform(1, 5), arr.shape)
    out = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=int(rng.integers(70, 95)))
    return Image.open(io.BytesIO(out.getvalue()))


def _size(rng: np.random.Generator) -> tuple[int, int]:
    w = int(rng.integers(500, 1000))
    return w, int(w * rng.uniform(0.6, 1.4))


def blurred_digit(rng: np.random.Generator) -> Image.Image:
    """A handwritten digit drawn large on paper and photographed out of focus."""
    from fmnist.photo.render.written import mnist_digits

    x = mnist_digits(probe=True)
    d = x[int(rng.integers(len(x)))]
    w, h = _size(rng)
    side = int(rng.uniform(0.6, 1.1) * min(w, h))
    paper = tuple(int(v) for v in rng.integers(200, 256, 3))
    ink = np.array(rng.integers(0, 90, 3), np.float32)
    img = Image.new("RGB", (w, h), paper)
    glyph = Image.fromarray(d).resize((side, side), Image.Resampling.BICUBIC)
    colour = Image.new("RGB", (side, side), tuple(int(v) for v in ink))
    img.paste(colour, ((w - side) // 2 + int(rng.integers(-w // 8, w // 8 + 1)), (h - side) // 2), glyph)
    return _jpeg(img.filter(ImageFilter.GaussianBlur(rng.uniform(0.01, 0.03) * side)), rng)


def scene(rng: np.random.Generator) -> Image.Image:
    """A street or skyline: sky, buildings with windows and roofs, a tower whose base is wide, some cut by the
    picture's edge."""
    w, h = _size(rng)
    top, bottom = rng.integers(120, 230, 3), rng.integers(170, 256, 3)
    t = np.linspace(0, 1, h)[:, None, None]
    sky = (top * (1 - t) + bottom * t) * np.ones((1, w, 1))
    img = Image.fromarray(sky.astype(np.uint8))
    d = ImageDraw.Draw(img)
    ground = int(h * rng.uniform(0.6, 0.9))
    for _ in range(int(rng.integers(2, 7))):
        bw = int(w * rng.uniform(0.08, 0.35))
        x0 = int(rng.integers(-bw // 2, w - bw // 2))
        y0 = int(ground - h * rng.uniform(0.15, 0.6))
        wall = tuple(int(v) for v in rng.integers(40, 220, 3))
        d.rectangle((x0, y0, x0 + bw, ground), fill=wall)
        if rng.random() < 0.6:  # a roof
            d.polygon(
                [(x0 - 5, y0), (x0 + bw // 2, y0 - int(bw * rng.uniform(0.2, 0.6))), (x0 + bw + 5, y0)],
                fill=tuple(int(v) for v in rng.integers(30, 160, 3)),
            )
        for wy in range(y0 + 10, ground - 15, int(rng.integers(18, 40))):
            for wx in range(x0 + 8, x0 + bw - 12, int(rng.integers(18, 40))):
                d.rectangle((wx, wy, wx + 8, wy + 12), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    if rng.random() < 0.7:  # a tower: a narrow shaft on a base that widens, like a long-sleeved top laid flat
        cx, tw = int(rng.uniform(0.2, 0.8) * w), int(w * rng.uniform(0.05, 0.12))
        shaft_top = int(h * rng.uniform(0.05, 0.3))
        base_y = int(ground - h * rng.uniform(0.1, 0.25))
        grey = tuple(int(v) for v in rng.integers(50, 140, 3))
        d.rectangle((cx - tw // 2, shaft_top, cx + tw // 2, base_y), fill=grey)
        d.polygon(
            [(cx - tw // 2, base_y), (cx + tw // 2, base_y), (cx + 2 * tw, ground), (cx - 2 * tw, ground)], fill=grey
        )
    d.rectangle((0, ground, w, h), fill=tuple(int(v) for v in rng.integers(40, 140, 3)))
    return _jpeg(img, rng)


def grain_noise(rng: np.random.Generator) -> Image.Image:
    """Noise whose grain runs from single pixels to blobs a tenth of the picture, grey or coloured."""
    from scipy import ndimage as ndi

    w, h = _size(rng)
    sigma = float(np.exp(rng.uniform(np.log(0.3), np.log(0.1 * min(w, h)))))
    channels = 1 if rng.random() < 0.4 else 3
    noise = ndi.gaussian_filter(rng.normal(size=(h, w, channels)), (sigma, sigma, 0))
    noise = (noise - noise.mean()) / (noise.std() + 1e-9)
    arr = 128 + rng.uniform(30, 90) * noise
    arr = np.broadcast_to(arr, (h, w, 3)) if channels == 1 else arr
    return _jpeg(Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)), rng)


def edge_object(rng: np.random.Generator) -> Image.Image:
    """A plain surface with a small dark object cut by the picture's edge: a cup, a box, a ball."""
    w, h = _size(rng)
    surface = tuple(int(v) for v in rng.integers(150, 250, 3))
    img = Image.new("RGB", (w, h), surface)
    d = ImageDraw.Draw(img)
    size = int(min(w, h) * rng.uniform(0.06, 0.25))
    side = int(rng.integers(4))
    along = int(rng.uniform(0.2, 0.8) * (w if side < 2 else h))
    inset = int(size * rng.uniform(-0.5, 0.3))  # how far in from the edge; below 0 the edge cuts it
    cx, cy = {
        0: (along, inset),
        1: (along, h - inset),
        2: (inset, along),
        3: (w - inset, along),
    }[side]
    colour = tuple(int(v) for v in rng.integers(0, 120, 3))
    if rng.random() < 0.5:
        d.ellipse((cx - size, cy - size, cx + size, cy + size), fill=colour)
    else:
        d.rectangle((cx - size, cy - int(size * rng.uniform(0.4, 1.5)), cx + size, cy + size), fill=colour)
    return _jpeg(img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 2))), rng)


def animal_on_rock(rng: np.random.Generator) -> Image.Image:
    """A rough rock surface with a dark animal on it: a body, a head, legs and a tail."""
    from scipy import ndimage as ndi

    w, h = _size(rng)
    rock = ndi.gaussian_filter(rng.normal(size=(h, w)), rng.uniform(2, 12))
    rock = (rock - rock.mean()) / (rock.std() + 1e-9)
    tone = np.array(rng.integers(90, 200, 3), np.float32)
    arr = tone[None, None] + rng.uniform(15, 45) * rock[..., None]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    bw = int(min(w, h) * rng.uniform(0.15, 0.4))
    cx, cy = int(w * rng.uniform(0.3, 0.7)), int(h * rng.uniform(0.3, 0.7))
    fur = tuple(int(v) for v in rng.integers(10, 110, 3))
    d.ellipse((cx - bw, cy - bw // 2, cx + bw, cy + bw // 2), fill=fur)
    d.ellipse((cx + bw - bw // 3, cy - bw, cx + bw + bw // 3, cy - bw // 3), fill=fur)
    for lx in (cx - bw // 2, cx - bw // 4, cx + bw // 4, cx + bw // 2):
        d.rectangle((lx - bw // 14, cy, lx + bw // 14, cy + bw), fill=fur)
    d.line((cx - bw, cy, cx - bw - bw // 2, cy - bw // 2), fill=fur, width=max(2, bw // 10))
    return _jpeg(img, rng)


KINDS = {
    "blurred digit": blurred_digit,
    "scene": scene,
    "grain noise": grain_noise,
    "edge object": edge_object,
    "animal on rock": animal_on_rock,
}


def strays(seed: int = 0, per_kind: int = 8) -> list[tuple[str, Image.Image]]:
    """(kind, picture) pairs: per_kind pictures of each of KINDS, each drawn from its own seed."""
    return [
        (kind, draw(np.random.default_rng([seed, 4099, k, i])))
        for k, (kind, draw) in enumerate(KINDS.items())
        for i in range(per_kind)
    ]
