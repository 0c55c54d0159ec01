"""White garments on white sheets: are they found whole, and read as well as the 28x28 items?

    python -m lab.white_on_white [--per-class 30] [--seed 1] [--out white-on-white]

A probe for one failure, written apart from the photo benchmark's renderers: a white or pastel garment (value
0.9-1, saturation under 0.2) on a near-white surface (value 0.82-1, saturation under 0.06), so that the body
often lies within the surface's own noise. The fabric is faintly shaded by the item's greys around their mean
(5-25 %) and a little darker overall (up to 6 %); a soft contact shadow (blur 2-8 px, up to 12 %) lies around
the item; a gentle light gradient, noise and JPEG. Validation items only. It reports the default model's
(`resnet`) accuracy through the app's pipeline, the notices, and how often the mask found overlaps the true
silhouette by less than half (IoU < 0.5), beside the items as 28x28. Results go to
lab/results/<out>-cpu.json.
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


def draw(item28: np.ndarray, seed: int) -> tuple[Image.Image, np.ndarray]:
    """(the photo, the item's true silhouette at the photo's size)."""
    rng = np.random.default_rng(seed)
    w, h, side, pa, solid, alpha = item_layer(item28, rng)
    surface = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.06), rng.uniform(0.82, 1.0)), np.float32)
    light = light_field(h, w, 0.08, rng)
    scene = surface[None, None] * light[..., None]
    mean = float(pa[solid].mean()) if solid.any() else 0.5  # the body's mean grey (its faint rim already is)
    colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.2), rng.uniform(0.9, 1.0)), np.float32)
    fabric = 1 - rng.uniform(0.05, 0.25) * (pa - mean) - rng.uniform(0.0, 0.06)
    top, left = placement(h, w, side, rng)
    truth = np.zeros((h, w), bool)
    truth[top : top + side, left : left + side] = solid
    contact = ndi.gaussian_filter(truth.astype(np.float32), rng.uniform(2, 8)) * rng.uniform(0.0, 0.12)
    scene = scene * (1 - contact)[..., None]
    lay(scene, colour, fabric, light, alpha, top, left)
    scene = scene + rng.normal(0, rng.uniform(0.004, 0.015), (h, w, 1))
    return jpeg(scene, int(rng.integers(75, 95))), truth


def job(args):
    item, seed = args
    picture, truth = draw(item, seed)
    pre = preprocess(picture)
    truth = np.asarray(Image.fromarray(truth).resize(pre.mask.shape[::-1], Image.Resampling.NEAREST))
    iou = (truth & pre.mask).sum() / max(1, (truth | pre.mask).sum())
    return _slim(pre), float(iou)


def main():
    run = probe(__doc__, "white-on-white", 30)
    with ProcessPoolExecutor(2) as pool:
        jobs = [(run.images[i], run.args.seed * 100003 + int(i)) for i in run.items]
        done = list(tqdm(pool.map(job, jobs, chunksize=4), total=len(jobs), desc="white on white"))
    ious = np.array([iou for _, iou in done])
    row = {
        **run.cell(run.answers([pre for pre, _ in done])),
        "mask_iou_median": float(np.median(ious)),
        "mask_iou_below_half": float(np.mean(ious < 0.5)),
    }
    print(f"28x28 {run.raw.mean():.3f}  {summary(row)}  masks with IoU < 0.5: {row['mask_iou_below_half']:.1%}")
    path = record(
        run.args.out, [row], torch.device("cpu"), {"items": len(run.items), "model": run.args.model, "split": "val"}
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
