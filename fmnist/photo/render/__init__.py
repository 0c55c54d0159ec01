"""Data-set items drawn as photographs by four renderers written independently of each other (none shares code
with another), for the photo benchmark (benchmarks/photos.py), the rendered training data
(python -m fmnist.photo.build) and the tests; and pictures that are not garments (non_garments).

- scenes: off-white, grey and tinted tables, gradients, soft shadows;
- tint: shop shots in linear light, the item's shading multiplied by a fabric colour;
- opaque: a flat colour shaded by the item's details, on coloured surfaces, hard shadows;
- pattern: printed fabrics on wood, tiles, carpet and sheets, hangers, keystone, EXIF orientation, defocus.

Each also draws a `pale` level, its own way: pastel and white garments, faintly shaded, on white and light-grey
backdrops.

`floors` (light garments on dark floors) is a fifth, for the rendered training data only: not one of RENDERERS.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from fmnist.photo.render import floors, opaque, pattern, scenes, tint
from fmnist.photo.render.non_garments import non_garments
from fmnist.photo.render.scenes import render_photo


def _scenes(item, level, rng):
    return render_photo(item, level, rng)[0]


# name -> (render(item28, level, rng) -> PIL image, levels)
RENDERERS = {
    "scenes": (_scenes, scenes.LEVELS),
    "tint": (tint.render, tint.LEVELS),
    "opaque": (opaque.render, opaque.LEVELS),
    "pattern": (pattern.render, pattern.LEVELS),
}


def render_item(
    renderer: str, level: str, item: np.ndarray, seed: int, index: int, tilt_deg: float = 0.0
) -> Image.Image:
    """One item's picture; the same (renderer, level, seed, index) always draws the same picture. With tilt_deg,
    the item is first turned by an angle drawn from [-tilt_deg, tilt_deg] (tilt_item)."""
    fn, levels = RENDERERS[renderer]
    rng = np.random.default_rng([seed, list(RENDERERS).index(renderer), levels.index(level), index])
    if tilt_deg:
        item = tilt_item(item, float(np.random.default_rng([seed, 31, index]).uniform(-tilt_deg, tilt_deg)))
    return fn(item, level, rng)


def tilt_item(item28: np.ndarray, deg: float) -> np.ndarray:
    """The 28x28 item turned by deg (counter-clockwise), whole: turned at 4x, then fitted back into 28x28."""
    big = Image.fromarray(np.ascontiguousarray(item28, np.uint8)).resize((112, 112), Image.Resampling.BICUBIC)
    turned = big.rotate(deg, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=0)
    return np.asarray(turned.resize((28, 28), Image.Resampling.LANCZOS))


__all__ = ["RENDERERS", "floors", "non_garments", "render_item", "render_photo", "tilt_item"]
