"""What a dark floor costs a light garment: the same validation items photographed on a light and a dark surface.

    python -m lab.dark_floors [--per-class 30] [--seed 1] [--out dark-floors] [--misses [PATH]]

A probe written apart from the photo benchmark's renderers. Each item is drawn twice from the same seed, as the
same light garment (value 0.7-1, saturation under 0.5), its fabric darkened by the item's greys as a shop photo's
(30-60 %), once on a light surface (value 0.8-0.95) and once on a dark one (value 0.06-0.35), both muted, with a
gentle light gradient, noise and JPEG. On the light surface the item is darker than its backdrop, as in the data
set's shop photos; on the dark one it is lighter, and the pipeline reads it by how much lighter it is, so its
darker print, folds and seams come out darker in the 28x28, the other way round from the data set's items. It
reports, for validation items only, the accuracy of the default model (`resnet`) through the app's pipeline and
the notices, per surface, beside the items as 28x28. Results go to lab/results/<out>-cpu.json; --misses
draws the first six items read right on the light surface and wrong on the dark one (lab/figures/dark_floor_misses.jpg).
"""

import colorsys

import numpy as np
from PIL import Image

from lab import _probe
from lab._common import ROOT
from lab._probe import item_layer, lay, light_field, placement, probe, save, snapshot, variant_cells

SURFACES = ("light", "dark")


def draw(item28: np.ndarray, dark: bool, seed: int) -> Image.Image:
    """One photo of the item: the same garment and light for both surfaces (only the surface's value differs)."""
    rng = np.random.default_rng(seed)
    w, h, side, greys, _, alpha = item_layer(item28, rng)
    hue, saturation = rng.random(), rng.uniform(0, 0.2)
    value = rng.uniform(0.06, 0.35) if dark else rng.uniform(0.8, 0.95)
    surface = np.array(colorsys.hsv_to_rgb(hue, saturation, value), np.float32)
    light = light_field(h, w, 0.12, rng)
    scene = surface[None, None] * light[..., None]
    colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.5), rng.uniform(0.7, 1.0)), np.float32)
    fabric = 1 - rng.uniform(0.3, 0.6) * greys
    top, left = placement(h, w, side, rng)
    lay(scene, colour, fabric, light, alpha, top, left)
    return snapshot(scene, rng)


def main():
    run = probe(__doc__, "dark-floors", 30, misses=str(ROOT / "lab" / "figures" / "dark_floor_misses.jpg"))
    rows, right = variant_cells(run, {surface: surface == "dark" for surface in SURFACES}, "surface", draw)
    if run.args.misses:
        lost = [i for i, light, dark in zip(run.items, right["light"], right["dark"]) if light and not dark]
        print(f"wrote {misses_picture(run, lost[:6], run.args.misses)}")
    save(run, rows)


def misses_picture(run, items, path: str) -> str:
    """One row per item read right on the light surface and wrong on the dark one: the dark-floor photo, what the
    model saw of it, what it saw of the light-floor photo, and the data set's 28x28 item."""
    return _probe.misses_picture(
        run,
        items,
        path,
        ("photo, dark floor", "model saw (dark)", "model saw (light)"),
        lambda i, seed: (draw(run.images[i], True, seed), draw(run.images[i], False, seed)),
    )


if __name__ == "__main__":
    main()
