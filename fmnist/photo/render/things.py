"""Everyday things that are not garments, drawn here as a phone would show them on a table, floor or wall:
furniture, food, animals, faces and hands, screens, documents, vehicles, plants and toys. Each kind has several
shapes, and every picture draws its own colours, size, position, backdrop, light, noise and JPEG quality, so
that the not-a-garment notice is checked on things of other kinds than the ones it was set on.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIDE = 480


def _colour(rng, lo=0, hi=256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, 3))


def _canvas(rng) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    """A backdrop: a table, floor or wall colour with a lighting gradient."""
    base = np.array(_colour(rng, 60, 250), float)
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] / SIDE
    angle = rng.uniform(0, 2 * np.pi)
    ramp = 1 + rng.uniform(-0.25, 0.25) * ((xx - 0.5) * np.cos(angle) + (yy - 0.5) * np.sin(angle))
    img = Image.fromarray(np.clip(base * ramp[..., None], 0, 255).astype(np.uint8))
    return img, ImageDraw.Draw(img)


def _photo(img: Image.Image, rng) -> Image.Image:
    """What a phone adds: a little blur, sensor noise, JPEG."""
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    arr = np.asarray(img, float) + rng.normal(0, rng.uniform(1, 6), (SIDE, SIDE, 3))
    buf = io.BytesIO()
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=int(rng.integers(60, 95)))
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def _box(rng, lo=0.35, hi=0.75):
    """(left, top, size) of the thing's square in the picture."""
    size = rng.uniform(lo, hi) * SIDE
    return (
        rng.uniform(0.05 * SIDE, SIDE - size - 0.05 * SIDE),
        rng.uniform(0.05 * SIDE, SIDE - size - 0.05 * SIDE),
        size,
    )


def furniture(rng, d: ImageDraw.ImageDraw):
    x, y, s = _box(rng, 0.5, 0.85)
    wood = _colour(rng, 40, 200)
    kind = rng.integers(3)
    if kind == 0:  # a chair: back, seat, four legs
        d.rectangle((x + 0.2 * s, y, x + 0.8 * s, y + 0.45 * s), fill=wood)
        d.rectangle((x + 0.1 * s, y + 0.45 * s, x + 0.9 * s, y + 0.55 * s), fill=wood)
        for lx in (0.12, 0.82):
            d.rectangle((x + lx * s, y + 0.55 * s, x + (lx + 0.06) * s, y + s), fill=wood)
    elif kind == 1:  # a table
        d.rectangle((x, y + 0.3 * s, x + s, y + 0.4 * s), fill=wood)
        for lx in (0.05, 0.88):
            d.rectangle((x + lx * s, y + 0.4 * s, x + (lx + 0.07) * s, y + s), fill=wood)
    else:  # a sofa
        d.rounded_rectangle((x, y + 0.3 * s, x + s, y + 0.8 * s), radius=int(0.08 * s), fill=wood)
        d.rounded_rectangle(
            (x + 0.1 * s, y + 0.1 * s, x + 0.9 * s, y + 0.5 * s),
            radius=int(0.06 * s),
            fill=tuple(max(0, c - 30) for c in wood),
        )
        d.rectangle((x + 0.05 * s, y + 0.8 * s, x + 0.12 * s, y + 0.9 * s), fill=(30, 30, 30))
        d.rectangle((x + 0.88 * s, y + 0.8 * s, x + 0.95 * s, y + 0.9 * s), fill=(30, 30, 30))


def food(rng, d):
    x, y, s = _box(rng)
    if rng.integers(2) == 0:  # a plate with food on it
        d.ellipse((x, y, x + s, y + s), fill=(245, 245, 240), outline=(200, 200, 200), width=4)
        for _ in range(int(rng.integers(3, 8))):
            r = rng.uniform(0.06, 0.15) * s
            cx, cy = x + rng.uniform(0.3, 0.7) * s, y + rng.uniform(0.3, 0.7) * s
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_colour(rng))
    else:  # a pizza: a disc, slices, toppings
        d.ellipse((x, y, x + s, y + s), fill=(210, 150, 60))
        d.ellipse((x + 0.06 * s, y + 0.06 * s, x + 0.94 * s, y + 0.94 * s), fill=(200, 60, 40))
        for a in np.linspace(0, np.pi, int(rng.integers(3, 5)), endpoint=False):
            c = (x + s / 2, y + s / 2)
            d.line(
                (
                    c[0] - 0.5 * s * np.cos(a),
                    c[1] - 0.5 * s * np.sin(a),
                    c[0] + 0.5 * s * np.cos(a),
                    c[1] + 0.5 * s * np.sin(a),
                ),
                fill=(150, 100, 40),
                width=3,
            )
        for _ in range(12):
            cx, cy = x + rng.uniform(0.2, 0.8) * s, y + rng.uniform(0.2, 0.8) * s
            d.ellipse((cx - 8, cy - 8, cx + 8, cy + 8), fill=(240, 230, 200))


def animal(rng, d):
    x, y, s = _box(rng)
    fur = _colour(rng, 30, 230)
    if rng.integers(2) == 0:  # a cat's face: head, ears, eyes, nose
        d.polygon([(x + 0.1 * s, y + 0.35 * s), (x + 0.2 * s, y), (x + 0.4 * s, y + 0.25 * s)], fill=fur)
        d.polygon([(x + 0.9 * s, y + 0.35 * s), (x + 0.8 * s, y), (x + 0.6 * s, y + 0.25 * s)], fill=fur)
        d.ellipse((x + 0.05 * s, y + 0.15 * s, x + 0.95 * s, y + 0.95 * s), fill=fur)
        for ex in (0.3, 0.6):
            d.ellipse((x + ex * s, y + 0.4 * s, x + (ex + 0.1) * s, y + 0.52 * s), fill=(90, 160, 60))
        d.polygon(
            [(x + 0.45 * s, y + 0.62 * s), (x + 0.55 * s, y + 0.62 * s), (x + 0.5 * s, y + 0.68 * s)],
            fill=(200, 110, 120),
        )
    else:  # a fish: body, tail, eye
        d.ellipse((x, y + 0.25 * s, x + 0.75 * s, y + 0.75 * s), fill=fur)
        d.polygon([(x + 0.7 * s, y + 0.5 * s), (x + s, y + 0.25 * s), (x + s, y + 0.75 * s)], fill=fur)
        d.ellipse((x + 0.12 * s, y + 0.4 * s, x + 0.2 * s, y + 0.48 * s), fill=(10, 10, 10))


def face_or_hand(rng, d):
    x, y, s = _box(rng, 0.45, 0.8)
    skin = tuple(int(v) for v in np.array([224, 172, 140]) * rng.uniform(0.45, 1.1))
    skin = tuple(min(255, c) for c in skin)
    if rng.integers(2) == 0:  # a face: hair, oval, eyes, mouth
        d.ellipse((x + 0.1 * s, y, x + 0.9 * s, y + 0.7 * s), fill=_colour(rng, 0, 120))
        d.ellipse((x + 0.18 * s, y + 0.12 * s, x + 0.82 * s, y + s), fill=skin)
        for ex in (0.33, 0.58):
            d.ellipse((x + ex * s, y + 0.42 * s, x + (ex + 0.09) * s, y + 0.48 * s), fill=(40, 30, 30))
        d.arc((x + 0.38 * s, y + 0.65 * s, x + 0.62 * s, y + 0.8 * s), 20, 160, fill=(150, 60, 60), width=5)
    else:  # an open hand: palm and five fingers
        d.rounded_rectangle((x + 0.25 * s, y + 0.45 * s, x + 0.75 * s, y + s), radius=int(0.1 * s), fill=skin)
        for k, fx in enumerate((0.27, 0.39, 0.51, 0.63)):
            top = y + (0.1 + 0.05 * abs(k - 1.5)) * s
            d.rounded_rectangle((x + fx * s, top, x + (fx + 0.1) * s, y + 0.55 * s), radius=int(0.05 * s), fill=skin)
        d.rounded_rectangle((x + 0.05 * s, y + 0.5 * s, x + 0.3 * s, y + 0.62 * s), radius=int(0.05 * s), fill=skin)


def screen(rng, d):
    x, y, s = _box(rng, 0.45, 0.85)
    phone = rng.integers(2) == 0
    w, h = (0.5 * s, s) if phone else (s, 0.65 * s)
    d.rounded_rectangle((x, y, x + w, y + h), radius=int(0.04 * s), fill=(20, 20, 25))
    inner = (x + 0.05 * w, y + 0.05 * h, x + 0.95 * w, y + 0.95 * h)
    d.rectangle(inner, fill=_colour(rng, 150, 256))
    for k in range(int(rng.integers(3, 8))):  # windows, icons, bars of text
        top = inner[1] + (k + 0.5) * (inner[3] - inner[1]) / 9
        d.rectangle(
            (inner[0] + 8, top, inner[0] + rng.uniform(0.3, 0.9) * (inner[2] - inner[0]), top + 10), fill=_colour(rng)
        )
    if not phone:
        d.rectangle((x + 0.45 * s, y + h, x + 0.55 * s, y + h + 0.12 * s), fill=(40, 40, 40))


def document(rng, d):
    x, y, s = _box(rng, 0.5, 0.85)
    w = 0.75 * s
    d.rectangle((x, y, x + w, y + s), fill=(250, 250, 245))
    if rng.integers(2) == 0:  # lines of text
        for k in range(int(rng.integers(10, 22))):
            top = y + 0.06 * s + k * 0.042 * s
            if top > y + 0.95 * s:
                break
            d.rectangle((x + 0.08 * w, top, x + rng.uniform(0.5, 0.92) * w, top + 0.012 * s), fill=(40, 40, 40))
    else:  # a table, a form
        for k in range(8):
            d.line(
                (x + 0.06 * w, y + (0.1 + 0.1 * k) * s, x + 0.94 * w, y + (0.1 + 0.1 * k) * s),
                fill=(60, 60, 60),
                width=2,
            )
        for fx in (0.06, 0.4, 0.7, 0.94):
            d.line((x + fx * w, y + 0.1 * s, x + fx * w, y + 0.8 * s), fill=(60, 60, 60), width=2)


def vehicle(rng, d):
    x, y, s = _box(rng, 0.55, 0.9)
    paint = _colour(rng)
    if rng.integers(2) == 0:  # a car: body, cabin, windows, wheels
        d.rounded_rectangle((x, y + 0.45 * s, x + s, y + 0.75 * s), radius=int(0.06 * s), fill=paint)
        d.polygon(
            [
                (x + 0.2 * s, y + 0.45 * s),
                (x + 0.32 * s, y + 0.25 * s),
                (x + 0.7 * s, y + 0.25 * s),
                (x + 0.82 * s, y + 0.45 * s),
            ],
            fill=paint,
        )
        d.polygon(
            [
                (x + 0.27 * s, y + 0.44 * s),
                (x + 0.35 * s, y + 0.3 * s),
                (x + 0.67 * s, y + 0.3 * s),
                (x + 0.75 * s, y + 0.44 * s),
            ],
            fill=(170, 200, 220),
        )
        for wx in (0.15, 0.7):
            d.ellipse((x + wx * s, y + 0.62 * s, x + (wx + 0.17) * s, y + 0.79 * s), fill=(20, 20, 20))
    else:  # a bicycle: two wheels and a frame
        for wx in (0.0, 0.6):
            d.ellipse((x + wx * s, y + 0.4 * s, x + (wx + 0.4) * s, y + 0.8 * s), outline=(20, 20, 20), width=6)
        pts = [
            (x + 0.2 * s, y + 0.6 * s),
            (x + 0.45 * s, y + 0.6 * s),
            (x + 0.8 * s, y + 0.6 * s),
            (x + 0.68 * s, y + 0.35 * s),
            (x + 0.35 * s, y + 0.35 * s),
        ]
        d.line(pts + [pts[1], pts[4], pts[0]], fill=paint, width=6)


def plant(rng, d):
    x, y, s = _box(rng, 0.45, 0.85)
    green = (int(rng.integers(20, 90)), int(rng.integers(100, 200)), int(rng.integers(20, 90)))
    d.polygon(
        [(x + 0.3 * s, y + 0.7 * s), (x + 0.7 * s, y + 0.7 * s), (x + 0.62 * s, y + s), (x + 0.38 * s, y + s)],
        fill=_colour(rng, 100, 230),
    )
    for _ in range(int(rng.integers(5, 11))):  # leaves fanning out of the pot
        a = rng.uniform(-2.6, -0.5)
        cx, cy = x + 0.5 * s + 0.28 * s * np.cos(a), y + 0.7 * s + 0.4 * s * np.sin(a)
        r = rng.uniform(0.06, 0.12) * s
        d.ellipse((cx - r, cy - 1.8 * r, cx + r, cy + 1.8 * r), fill=green)
        d.line((x + 0.5 * s, y + 0.7 * s, cx, cy), fill=tuple(max(0, c - 30) for c in green), width=4)


def toy(rng, d):
    x, y, s = _box(rng, 0.35, 0.75)
    kind = rng.integers(3)
    if kind == 0:  # a ball with stripes
        d.ellipse((x, y, x + s, y + s), fill=_colour(rng))
        d.arc((x + 0.1 * s, y - 0.3 * s, x + 0.9 * s, y + 0.7 * s), 30, 150, fill=_colour(rng), width=int(0.06 * s))
    elif kind == 1:  # a teddy bear: head, ears, body
        fur = _colour(rng, 80, 200)
        for ex in (0.25, 0.75):
            d.ellipse((x + (ex - 0.1) * s, y, x + (ex + 0.1) * s, y + 0.2 * s), fill=fur)
        d.ellipse((x + 0.25 * s, y + 0.05 * s, x + 0.75 * s, y + 0.5 * s), fill=fur)
        d.ellipse((x + 0.2 * s, y + 0.42 * s, x + 0.8 * s, y + s), fill=fur)
    else:  # stacked building blocks
        for k in range(int(rng.integers(3, 6))):
            bx = x + rng.uniform(0, 0.5) * s
            by = y + s - (k + 1) * 0.2 * s
            d.rectangle((bx, by, bx + 0.3 * s, by + 0.2 * s), fill=_colour(rng))


KINDS = {
    "furniture": furniture,
    "food": food,
    "animal": animal,
    "face or hand": face_or_hand,
    "screen": screen,
    "document": document,
    "vehicle": vehicle,
    "plant": plant,
    "toy": toy,
}


def things(seed: int = 0, per_kind: int = 7) -> list[tuple[str, Image.Image]]:
    """(kind, picture) pairs: per_kind pictures of each of KINDS (63 with the default)."""
    out = []
    for k, (kind, draw) in enumerate(KINDS.items()):
        for i in range(per_kind):
            rng = np.random.default_rng([seed, 977, k, i])
            img, d = _canvas(rng)
            draw(rng, d)
            out.append((kind, _photo(img, rng)))
    return out
