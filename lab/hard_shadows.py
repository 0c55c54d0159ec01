"""What a lamp's hard shadow costs: the same validation items photographed with and without one.

    python -m lab.hard_shadows [--per-class 15] [--seed 1] [--out hard-shadows]

A probe for one failure, written apart from the photo benchmark's renderers: of those, only the held-out
`opaque` casts hard shadows, so no setting may be chosen on it. Each item is drawn twice from the same seed,
once without and once with a hard-edged shadow beside it (the silhouette, shifted 3-9 % of the item's size,
darkening the surface by 20-55 %, blurred by at most 2 px), on a light or mid surface with a gentle gradient,
noise and JPEG. Half the garments are pale (a pastel or white, faintly shaded by the item's greys), half any
colour (shaded as a shop photo's greys). It reports, for validation items only, the accuracy of the default
model (`resnet`) through the app's pipeline and notices, per kind and shadow, beside the items as 28x28.
Results go to lab/results/<out>-cpu.json.
"""

import colorsys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from PIL import Image
from scipy import ndimage as ndi
from tqdm.auto import tqdm

from benchmarks.photos import _slim
from fmnist.photo import preprocess
from lab._common import record
from lab._probe import item_layer, jpeg, lay, light_field, placement, probe, summary

KINDS = ("pale", "any colour")


def draw(item28: np.ndarray, pale: bool, shadow: bool, seed: int) -> Image.Image:
    """One photo of the item: the same picture for both values of `shadow` (the shadow's draws come last)."""
    rng = np.random.default_rng(seed)
    w, h, side, pa, solid, alpha = item_layer(item28, rng)
    hue, sat = rng.random(), rng.uniform(0, 0.25)
    surface = np.array(colorsys.hsv_to_rgb(hue, sat, rng.uniform(0.55, 0.95)), np.float32)
    light = light_field(h, w, 0.12, rng)
    scene = surface[None, None] * light[..., None]
    if pale:
        colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.3), rng.uniform(0.9, 1.0)), np.float32)
        fabric = 1 - rng.uniform(0.1, 0.3) * pa
    else:
        colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 1), rng.uniform(0.3, 1.0)), np.float32)
        fabric = 1 - 0.6 * pa
    top, left = placement(h, w, side, rng)
    noise, quality = rng.uniform(0.004, 0.015), int(rng.integers(75, 95))
    direction, reach = rng.uniform(0, 2 * np.pi), rng.uniform(0.03, 0.09) * side
    depth, blur = rng.uniform(0.2, 0.55), rng.uniform(0, 2)
    if shadow:
        dy, dx = int(round(reach * np.sin(direction))), int(round(reach * np.cos(direction)))
        cast = np.zeros((h, w), np.float32)
        sy, sx = int(np.clip(top + dy, 0, h - side)), int(np.clip(left + dx, 0, w - side))
        cast[sy : sy + side, sx : sx + side] = solid
        cast = ndi.gaussian_filter(cast, blur) if blur > 0.3 else cast
        scene = scene * (1 - depth * cast)[..., None]
    lay(scene, colour, fabric, light, alpha, top, left)
    return jpeg(scene + rng.normal(0, noise, (h, w, 1)), quality)


def job(args):
    item, pale, shadow, seed = args
    return _slim(preprocess(draw(item, pale, shadow, seed)))


def main():
    run = probe(__doc__, "hard-shadows", 15)
    rows = []
    with ProcessPoolExecutor(2) as pool:
        for kind in KINDS:
            for shadow in (False, True):
                jobs = [(run.images[i], kind == "pale", shadow, run.args.seed * 100003 + int(i)) for i in run.items]
                got = run.answers(
                    list(tqdm(pool.map(job, jobs, chunksize=4), total=len(jobs), desc=f"{kind}/{shadow}"))
                )
                rows.append({"kind": kind, "shadow": shadow, **run.cell(got)})
                print(f"{kind:10s} shadow={shadow!s:5s} {summary(rows[-1])}")
    path = record(
        run.args.out, rows, torch.device("cpu"), {"items": len(run.items), "model": run.args.model, "split": "val"}
    )
    print(f"raw 28x28 {run.raw.mean():.3f}; wrote {path}")


if __name__ == "__main__":
    main()
