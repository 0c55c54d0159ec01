"""Does the not-a-garment detector's outlier head flag more of the fragments that slip past the notice when it
also learns pictures of such things, drawn by code of their own, apart from the probes that measure the notice
(fmnist.photo.render.strays, non_garments and things)?

- type: a printed character (a digit or a letter of Pillow's own font), large, often out of focus;
- facade: a building seen from the street, its walls in perspective, a grid of windows, sky and pavement;
- texture: a surface with no object at all: stripes, cells, speckle or blotches, at every scale;
- part: an everyday object partly outside the picture;
- ground: a dark animal or stone on a rough ground.

Every picture draws its own size, colours, light, noise and JPEG quality.

    python -m lab.fragments [--out data/outliers-v3.npz]   # the things of fmnist.photo.outliers and these, seeds
                                                           # 3-20, those the picture rules let through (9 minutes)
    python -m lab.fragments --only-fragments --out FILE    # these alone (for lab.digit_head --third FILE)

Then, with fmnist.photo.outliers.DEFAULT_PATH pointed at that file (a one-line change, never committed), `python -m
fmnist.checkpoints refit-detector` refitted every bundled detector; `python -m lab.picture_signals --out
picture-signals-v3-val` measured it on validation, and `python -m benchmarks.photos --per-class 30` on test
(lab/results/photos-fragments-cpu.json). Not adopted: see lab/README.md.
"""

from __future__ import annotations

import argparse
import io
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

CHARACTERS = "0123456789AEHKMRSWXZaegkmwx&%@#"


def _colour(rng, lo=0, hi=256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))


def _frame(rng) -> tuple[int, int]:
    """(width, height) of a phone picture, landscape or portrait."""
    long_side = int(rng.integers(420, 900))
    short_side = int(long_side * rng.uniform(0.65, 1.0))
    return (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)


def _shot(img: Image.Image, rng) -> Image.Image:
    """What a phone adds: defocus, sensor noise, JPEG."""
    img = img.convert("RGB").filter(ImageFilter.GaussianBlur(rng.uniform(0.2, 1.2)))
    arr = np.asarray(img, np.float32)
    arr = arr + rng.normal(0, rng.uniform(1, 7), arr.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(55, 95)))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def printed_character(rng) -> Image.Image:
    """A character printed or written large on a sheet, turned a little, often out of focus."""
    w, h = _frame(rng)
    sheet = Image.new("RGB", (w, h), _colour(rng, 170, 256))
    size = int(min(w, h) * rng.uniform(0.45, 1.0))
    glyph = Image.new("L", (2 * size, 2 * size), 0)
    font = ImageFont.load_default(size=size)
    ImageDraw.Draw(glyph).text(
        (size, size),
        CHARACTERS[int(rng.integers(len(CHARACTERS)))],
        fill=255,
        font=font,
        anchor="mm",
        stroke_width=int(size * rng.uniform(0, 0.06)),
        stroke_fill=255,
    )
    glyph = glyph.rotate(rng.uniform(-20, 20), Image.Resampling.BILINEAR)
    glyph = glyph.filter(ImageFilter.GaussianBlur(size * rng.uniform(0, 0.05)))
    ink = Image.new("RGB", glyph.size, _colour(rng, 0, 120))
    left = (w - glyph.width) // 2 + int(rng.integers(-w // 6, w // 6 + 1))
    top = (h - glyph.height) // 2 + int(rng.integers(-h // 6, h // 6 + 1))
    sheet.paste(ink, (left, top), glyph)
    return _shot(sheet, rng)


def facade(rng) -> Image.Image:
    """Buildings seen from the street: walls as quadrilaterals that narrow upwards, rows of windows, a sky above
    and a pavement below, some walls cut by the picture's edge."""
    w, h = _frame(rng)
    sky = np.array(_colour(rng, 110, 250), np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    arr = sky * (0.8 + 0.3 * t) * np.ones((1, w, 1), np.float32)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    street = int(h * rng.uniform(0.7, 1.0))
    for _ in range(int(rng.integers(1, 4))):
        left, width = int(rng.uniform(-0.2, 0.8) * w), int(rng.uniform(0.2, 0.7) * w)
        top = int(rng.uniform(0.0, 0.5) * h)
        lean = int(width * rng.uniform(-0.15, 0.15))
        wall = _colour(rng, 50, 230)
        corners = [(left + lean, top), (left + width - lean, top), (left + width, street), (left, street)]
        d.polygon(corners, fill=wall)
        glass = _colour(rng, 0, 110)
        rows, cols = int(rng.integers(2, 8)), int(rng.integers(2, 7))
        for r in range(rows):
            for c in range(cols):
                fx, fy = (c + 0.3) / cols, (r + 0.25) / rows
                x = left + fx * width + lean * (1 - fy) * (1 - 2 * fx)
                y = top + fy * (street - top)
                d.rectangle((x, y, x + 0.4 * width / cols, y + 0.5 * (street - top) / rows), fill=glass)
    d.rectangle((0, street, w, h), fill=_colour(rng, 60, 170))
    return _shot(img, rng)


def texture(rng) -> Image.Image:
    """A surface and nothing on it: stripes, cells, speckle or blotches, from fine to coarse."""
    w, h = _frame(rng)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    kind = int(rng.integers(4))
    scale = float(np.exp(rng.uniform(np.log(2), np.log(0.25 * min(w, h)))))
    if kind == 0:  # stripes, crossed or not
        a = rng.uniform(0, np.pi)
        field = np.sin((xx * np.cos(a) + yy * np.sin(a)) / scale * np.pi)
        if rng.random() < 0.5:
            field = field + np.sin((xx * np.cos(a + np.pi / 2) + yy * np.sin(a + np.pi / 2)) / scale * np.pi)
    elif kind == 1:  # cells: the distance to the nearest of scattered points
        n = int(np.clip(w * h / scale**2, 4, 3000))
        pts = rng.uniform(0, 1, (n, 2)) * (w, h)
        from scipy.spatial import cKDTree

        dist, _ = cKDTree(pts).query(np.stack([xx.ravel(), yy.ravel()], 1))
        field = dist.reshape(h, w)
    elif kind == 2:  # speckle: dots of one grain scattered at a density
        field = (rng.random((h, w)) < rng.uniform(0.02, 0.5)).astype(np.float32)
        field = np.asarray(Image.fromarray((255 * field).astype(np.uint8)).filter(ImageFilter.MaxFilter(3)))
        field = field.astype(np.float32)
    else:  # blotches: coarse noise, upsampled from a small grid
        small = rng.normal(size=(max(2, int(h / scale)), max(2, int(w / scale)))).astype(np.float32)
        field = np.asarray(Image.fromarray(small, "F").resize((w, h), Image.Resampling.BICUBIC))
    field = (field - field.mean()) / (field.std() + 1e-6)
    one, two = np.array(_colour(rng), np.float32), np.array(_colour(rng), np.float32)
    mix = np.clip(0.5 + rng.uniform(0.2, 0.5) * field, 0, 1)[..., None]
    return _shot(Image.fromarray((one * mix + two * (1 - mix)).astype(np.uint8)), rng)


def part(rng) -> Image.Image:
    """An everyday object, a third to three quarters of it outside the picture: a plate, a box, a bottle, a ball."""
    w, h = _frame(rng)
    img = Image.new("RGB", (w, h), _colour(rng, 90, 250))
    d = ImageDraw.Draw(img)
    size = min(w, h) * rng.uniform(0.1, 0.6)
    outside = rng.uniform(0.3, 0.75)
    side = int(rng.integers(4))
    along = rng.uniform(0.15, 0.85)
    centre = {
        0: (along * w, (0.5 - outside) * size),
        1: (along * w, h - (0.5 - outside) * size),
        2: ((0.5 - outside) * size, along * h),
        3: (w - (0.5 - outside) * size, along * h),
    }[side]
    cx, cy = centre
    body = _colour(rng, 0, 200)
    shape = int(rng.integers(3))
    if shape == 0:  # a plate or ball
        d.ellipse((cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2), fill=body)
        if rng.random() < 0.5:
            d.ellipse((cx - size / 3, cy - size / 3, cx + size / 3, cy + size / 3), fill=_colour(rng, 0, 256))
    elif shape == 1:  # a box, turned
        a = rng.uniform(0, np.pi / 2)
        r = size / 2 * np.array([1, rng.uniform(0.4, 1)])
        corners = [(-r[0], -r[1]), (r[0], -r[1]), (r[0], r[1]), (-r[0], r[1])]
        d.polygon(
            [(cx + x * np.cos(a) - y * np.sin(a), cy + x * np.sin(a) + y * np.cos(a)) for x, y in corners], fill=body
        )
    else:  # a bottle: a body and a neck
        d.rectangle((cx - size / 5, cy - size / 6, cx + size / 5, cy + size / 2), fill=body)
        d.rectangle((cx - size / 14, cy - size / 2, cx + size / 14, cy - size / 6), fill=body)
    return _shot(img, rng)


def ground(rng) -> Image.Image:
    """A dark animal or a stone on rough ground: gravel, soil or grass as speckled, layered noise."""
    w, h = _frame(rng)
    base = np.array(_colour(rng, 70, 210), np.float32)
    rough = np.zeros((h, w), np.float32)
    for grain in (2, 8, 32):
        small = rng.normal(size=(h // grain + 1, w // grain + 1)).astype(np.float32)
        rough += np.asarray(Image.fromarray(small, "F").resize((w, h), Image.Resampling.BILINEAR)) / grain**0.3
    arr = base + rng.uniform(10, 35) * rough[..., None]
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    cx, cy, s = w * rng.uniform(0.3, 0.7), h * rng.uniform(0.3, 0.7), min(w, h) * rng.uniform(0.12, 0.35)
    dark = _colour(rng, 0, 90)
    if rng.random() < 0.5:  # a stone: a lumpy polygon
        angles = np.sort(rng.uniform(0, 2 * np.pi, 9))
        radii = s * rng.uniform(0.6, 1.0, 9)
        d.polygon([(cx + r * np.cos(a), cy + r * np.sin(a)) for r, a in zip(radii, angles)], fill=dark)
    else:  # an animal seen from above: a body, a head, four legs, a tail
        d.ellipse((cx - s, cy - 0.4 * s, cx + s, cy + 0.4 * s), fill=dark)
        d.ellipse((cx + 0.8 * s, cy - 0.3 * s, cx + 1.3 * s, cy + 0.3 * s), fill=dark)
        for lx in (-0.6, 0.5):
            for sign in (-1, 1):
                d.line((cx + lx * s, cy, cx + (lx + 0.2) * s, cy + sign * 0.9 * s), fill=dark, width=max(3, int(s / 8)))
        d.line((cx - s, cy, cx - 1.6 * s, cy + rng.uniform(-0.5, 0.5) * s), fill=dark, width=max(2, int(s / 12)))
    return _shot(img, rng)


KINDS = {
    "type": printed_character,
    "facade": facade,
    "texture": texture,
    "part": part,
    "ground": ground,
}


def fragments(seed: int = 0, per_kind: int = 6) -> list[tuple[str, Image.Image]]:
    """(kind, picture) pairs: per_kind pictures of each of KINDS, each from its own seed."""
    return [
        (kind, draw(np.random.default_rng([seed, 6151, k, i])))
        for k, (kind, draw) in enumerate(KINDS.items())
        for i in range(per_kind)
    ]


def _seed_things(seed: int, only_fragments: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """One seed's things (fmnist.photo.outliers's and these, or these alone) that the picture rules let through:
    pixels, kinds."""
    from fmnist.notice.rules import picture_rules
    from fmnist.photo import preprocess
    from fmnist.photo.render import non_garments

    pixels, kinds = [], []
    things = [] if only_fragments else non_garments(seed=seed, probe_digits=False)
    for kind, picture in things + fragments(seed=seed):
        pre = preprocess(picture)
        if not picture_rules(pre):
            pixels.append(pre.pixels)
            kinds.append(kind.split(":")[0])
    return np.stack(pixels), np.asarray(kinds, dtype=str)


def main():
    from fmnist.photo.outliers import SEEDS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="data/outliers-v3.npz")
    p.add_argument("--only-fragments", action="store_true", help="these kinds alone, not the outliers' things too")
    args = p.parse_args()
    with ProcessPoolExecutor(2) as pool:
        done = list(pool.map(_seed_things, SEEDS, [args.only_fragments] * len(SEEDS)))
    pixels, kinds = np.concatenate([d[0] for d in done]), np.concatenate([d[1] for d in done])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, pixels=pixels, kinds=kinds, seeds=np.asarray(list(SEEDS)))
    print(f"{args.out}: {len(pixels)} pictures of {len(set(kinds.tolist()))} kinds")


if __name__ == "__main__":
    main()
