"""What a garment not laid flat costs: the same validation items photographed flat, loosely laid and crumpled.

    python -m lab.crumpled [--per-class 30] [--seed 1] [--out crumpled] [--misses [PATH]]

A probe written apart from the photo benchmark's renderers, none of which bends an item's shape: the data set's
items are flat product shots, while a garment laid on a bed or a floor at home has sleeves and hems pushed out of
line. Each item is drawn three times from the same seed, as the same garment (any hue, value 0.25-0.9, its fabric
darkened by the item's greys as a shop photo's) on the same light surface under the same light, with noise and
JPEG: once flat, and twice with its whole shape (outline, details and shading alike) pushed by a smooth random
displacement field of at most 4 % (`loose`) and 8 % (`crumpled`) of the item's size. It reports, for validation
items only, the accuracy of the default model (`resnet`) through the app's pipeline and the notices, per shape,
beside the items as 28x28. Results go to lab/results/<out>-cpu.json; --misses draws the first six items
read right flat and wrong crumpled (lab/figures/crumpled_misses.jpg).
"""

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

from lab import _probe
from lab._common import ROOT
from lab._probe import garment_on_light_surface, lay, placement, probe, save, snapshot, variant_cells

SHAPES = {"flat": 0.0, "loose": 0.04, "crumpled": 0.08}  # the largest push, as a share of the item's side
GRID = 5  # the displacement field's control points a side: a few bends across a garment


def bend(layers: list[np.ndarray], strength: float, rng: np.random.Generator) -> list[np.ndarray]:
    """The same smooth displacement of every (side, side) layer, at most strength * side pixels anywhere."""
    side = layers[0].shape[0]
    coarse = rng.uniform(-1, 1, (2, GRID, GRID))
    field = np.stack([ndi.zoom(c, side / GRID, order=3)[:side, :side] for c in coarse])
    field *= strength * side / max(np.abs(field).max(), 1e-6)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    at = [yy + field[0], xx + field[1]]
    return [ndi.map_coordinates(layer, at, order=1, mode="constant", cval=0.0) for layer in layers]


def draw(item28: np.ndarray, shape: str, seed: int) -> Image.Image:
    """One photo of the item: the same garment, surface and light for every shape (only the bend differs)."""
    rng = np.random.default_rng(seed)
    scene, light, colour, fabric, _, alpha, side = garment_on_light_surface(item28, rng)
    bend_rng = np.random.default_rng([seed, 7])  # its own draws, so that the flat photo is the same as unbent
    if SHAPES[shape]:
        fabric, alpha = bend([fabric, alpha], SHAPES[shape], bend_rng)
    top, left = placement(*scene.shape[:2], side, rng)
    lay(scene, colour, fabric, light, alpha, top, left)
    return snapshot(scene, rng)


def main():
    run = probe(__doc__, "crumpled", 30, misses=str(ROOT / "lab" / "figures" / "crumpled_misses.jpg"))
    rows, right = variant_cells(run, {shape: shape for shape in SHAPES}, "shape", draw)
    for row in rows:
        row["max_push"] = SHAPES[row["shape"]]
    if run.args.misses:
        lost = [i for i, flat, bent in zip(run.items, right["flat"], right["crumpled"]) if flat and not bent]
        print(f"wrote {misses_picture(run, lost[:6], run.args.misses)}")
    save(run, rows)


def misses_picture(run, items, path: str) -> str:
    """One row per item read right flat and wrong crumpled: the crumpled photo, what the model saw of it, what it
    saw of the flat photo, and the data set's 28x28 item."""
    return _probe.misses_picture(
        run,
        items,
        path,
        ("photo, crumpled", "model saw", "model saw (flat)"),
        lambda i, seed: (draw(run.images[i], "crumpled", seed), draw(run.images[i], "flat", seed)),
    )


if __name__ == "__main__":
    main()
