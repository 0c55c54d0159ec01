"""A second shop for the catalogue loop's benchmark (benchmarks.loop --renderer studio): one studio that photographs
its whole catalogue the same way. Written for the loop alone: not one of the photo benchmark's renderers, never
drawn in the rendered training data, sharing no code with them.

The shop's setup is fixed, as a real shop's is: a phone on a stand looks down at the flat-laid garment from the
front, so the garment is foreshortened (its height 0.8 of its width's scale) and its far end is narrower (a
keystone, 0.88); a warm grey paper sweep; a softbox on the left, so the light falls off to the right and a soft
shadow lies to the lower right. What differs from picture to picture is the garment: its colour (any hue, value
0.2-0.85), how strongly its own greys shade it, a small shift and a turn of up to 4 degrees; and the phone's noise.
"""

from __future__ import annotations

import colorsys
import io

import numpy as np
from PIL import Image, ImageFilter

W, H = 1200, 900
PAPER = np.array([0.80, 0.77, 0.72], np.float32)  # a warm grey sweep
SQUASH = 0.8  # the garment's height, as seen from the stand, over what it would be seen from straight above
KEYSTONE = 0.88  # the far (upper) edge's width over the near one's
LIGHT_FALL = 0.16  # the light falls off by this share from the left edge to the right
SHADOW = (0.025, 0.03, 0.18, 12)  # the shadow's move right and down (shares of the garment's side), depth, blur (px)


def _perspective(layer: Image.Image) -> Image.Image:
    """The square layer as the stand's camera sees it: squashed in height, its upper edge narrower."""
    side = layer.size[0]
    h = int(side * SQUASH)
    inset = (1 - KEYSTONE) / 2 * side
    # PIL's perspective maps each output pixel back to the input: the output quad's corners to the square's
    src = [(0, 0), (side, 0), (side, side), (0, side)]
    dst = [(inset, 0), (side - inset, 0), (side, h), (0, h)]
    a = []
    for (x, y), (u, v) in zip(dst, src):
        a.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        a.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    coeffs = np.linalg.solve(np.asarray(a, float), np.asarray(src, float).reshape(8))
    return layer.transform((side, h), Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BILINEAR)


def render(item28: np.ndarray, rng: np.random.Generator) -> Image.Image:
    side = int(rng.uniform(0.62, 0.7) * H / SQUASH)
    greys = np.asarray(Image.fromarray(item28).resize((side, side), Image.Resampling.BILINEAR), np.float32) / 255
    turn = float(rng.uniform(-4, 4))
    colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.7), rng.uniform(0.2, 0.85)), np.float32)
    fabric = np.clip(1 - rng.uniform(0.35, 0.6) * greys, 0, 1)
    body = np.clip(colour[None, None] * fabric[..., None], 0, 1)
    solid = (greys > 0.03).astype(np.float32)
    layers = [
        Image.fromarray((body * 255).round().astype(np.uint8)),
        Image.fromarray((solid * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8)),
    ]
    garment, alpha = (_perspective(layer.rotate(turn, Image.Resampling.BICUBIC)) for layer in layers)
    gw, gh = garment.size
    top = (H - gh) // 2 + int(rng.integers(-H // 30, H // 30 + 1))
    left = (W - gw) // 2 + int(rng.integers(-W // 30, W // 30 + 1))
    xx = np.arange(W, dtype=np.float32)[None, :] / W
    light = (1 - LIGHT_FALL * xx)[..., None]
    scene = np.repeat(PAPER[None, None], H, 0).repeat(W, 1) * light
    a = np.asarray(alpha, np.float32) / 255
    dx, dy, depth, blur = SHADOW
    shade = np.zeros((H, W), np.float32)
    sy, sx = top + int(dy * gw), left + int(dx * gw)
    shade[sy : sy + gh, sx : sx + gw] = a[: H - sy, : W - sx]
    shade = np.asarray(Image.fromarray((shade * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur)))
    scene = scene * (1 - depth * shade[..., None] / 255)
    spot = (slice(top, top + gh), slice(left, left + gw))
    g = np.asarray(garment, np.float32) / 255 * light[:, left : left + gw][None, 0]
    scene[spot] = a[..., None] * g + (1 - a[..., None]) * scene[spot]
    scene = scene + rng.normal(0, 0.006, (H, W, 1))
    out = io.BytesIO()
    Image.fromarray((np.clip(scene, 0, 1) * 255).round().astype(np.uint8)).save(out, "JPEG", quality=88)
    return Image.open(io.BytesIO(out.getvalue()))
