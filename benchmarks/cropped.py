"""What a garment cut by the picture's edge costs: the same validation items photographed whole and with a part
of them outside the frame.

    python -m benchmarks.cropped [--per-class 30] [--seed 1] [--out cropped]

A probe written apart from the photo benchmark's renderers, all of which keep the whole item in the frame: at
home a long dress's hem or a coat's sleeve is easily left out of a phone picture. Each item is drawn as the
same garment (any hue, value 0.25-0.9, its fabric darkened by the item's greys as a shop photo's) on a light
surface with a gentle light gradient, noise and JPEG. The whole picture is the `whole` cell; the same picture
with its frame cut on one side (drawn per item: top, bottom, left or right) through the item, so that 10 % or
20 % of the item's extent on that axis is outside the frame, gives the `cut 10 %` and `cut 20 %` cells. It
reports, for validation items only, the accuracy of the default model (`resnet`) through the app's pipeline and
the notices, per cut, beside the items as 28x28. Results go to benchmarks/results/<out>-cpu.json.
"""

import numpy as np
from PIL import Image

from benchmarks._probe import garment_on_light_surface, lay, placement, probe, save, snapshot, variant_cells

CUTS = {"whole": 0.0, "cut 10 %": 0.1, "cut 20 %": 0.2}  # the share of the item's extent outside the frame
SIDES = ("top", "bottom", "left", "right")


def draw(item28: np.ndarray, cut: float, seed: int) -> Image.Image:
    """One photo of the item, its frame cut on one side (the same side and picture for every cut)."""
    rng = np.random.default_rng(seed)
    scene, light, colour, fabric, solid, alpha, side = garment_on_light_surface(item28, rng)
    h, w = scene.shape[:2]
    top, left = placement(h, w, side, rng)
    lay(scene, colour, fabric, light, alpha, top, left)
    photo = snapshot(scene, rng)
    where = SIDES[int(rng.integers(len(SIDES)))]
    if not cut:
        return photo
    ys, xs = np.nonzero(solid)
    y0, y1, x0, x1 = top + ys.min(), top + ys.max() + 1, left + xs.min(), left + xs.max() + 1
    box = {
        "top": (0, y0 + int(cut * (y1 - y0)), w, h),
        "bottom": (0, 0, w, y1 - int(cut * (y1 - y0))),
        "left": (x0 + int(cut * (x1 - x0)), 0, w, h),
        "right": (0, 0, x1 - int(cut * (x1 - x0)), h),
    }[where]
    return photo.crop(box)


def main():
    run = probe(__doc__, "cropped", 30)
    rows, _ = variant_cells(run, CUTS, "cut", draw)
    for row in rows:
        row["share_outside"] = CUTS[row["cut"]]
    save(run, rows)


if __name__ == "__main__":
    main()
