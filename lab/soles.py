"""Shoes with a pale sole: is the sole found with the shoe, and is the shoe read as well as the 28x28 item?

    python -m lab.soles [--per-class 60] [--seed 1] [--out soles]

A probe written apart from the photo benchmark's renderers: a shoe whose upper is any colour (as
lab._probe.garment_on_light_surface draws a garment) and whose sole is white or nearly (value 0.93-1, saturation
under 0.05), on a light surface (value 0.85-0.97), so that the sole differs from the surface far less than the
upper does. The sole is the lowest 12-20 % of the silhouette's height in each column. Each shoe is drawn twice from
the same seed: in one tone (`one tone`), with the pale sole (`pale sole`), and with a pale midsole above a thin
grey outsole a little darker than the surface (`midsole`: the outsole is the lowest 35 % of the sole, and "sole
kept" then measures the outsole), a part apart from the upper. Validation Sandals, Sneakers and
Ankle boots only. It reports the default model's (`resnet`) accuracy through the app's pipeline and the notices,
the share of the sole inside the mask found, the mask's overlap with the true silhouette, and the tilt undone,
beside the items as 28x28. Results go to lab/results/<out>-cpu.json.
"""

import colorsys
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from benchmarks.photos import _slim
from fmnist.photo import preprocess
from lab._common import record
from lab._probe import garment_on_light_surface, lay, placement, probe, snapshot, summary

SHOES = (5, 7, 9)  # Sandal, Sneaker, Ankle boot
VARIANTS = ("one tone", "pale sole", "midsole")
OUTSOLE = 0.35  # of the sole's depth, in the `midsole` variant


def sole_of(solid: np.ndarray, share: float) -> np.ndarray:
    """The lowest share of the silhouette's height in each of its columns."""
    ys = np.nonzero(solid.any(1))[0]
    depth = share * (ys.max() - ys.min() + 1)
    rows = np.arange(solid.shape[0])[:, None]
    bottom = np.where(solid.any(0), solid.shape[0] - 1 - np.argmax(solid[::-1], axis=0), -1)[None, :]
    return solid & (rows > bottom - depth)


def draw(item28: np.ndarray, variant: str, seed: int) -> tuple[Image.Image, np.ndarray, np.ndarray]:
    """(the photo, the shoe's true silhouette and its sole, both at the photo's size)."""
    rng = np.random.default_rng(seed)
    scene, light, colour, fabric, solid, alpha, side = garment_on_light_surface(item28, rng)
    share = rng.uniform(0.12, 0.2)
    sole = sole_of(solid, share)
    white = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.05), rng.uniform(0.93, 1.0)), np.float32)
    top, left = placement(*scene.shape[:2], side, rng)
    if variant == "one tone":
        lay(scene, colour, fabric, light, alpha, top, left)
    else:  # the upper in its colour, then the sole in white, faintly shaded by the item's greys
        lay(scene, colour, fabric, light, alpha * ~sole, top, left)
        lay(scene, white, 1 - 0.3 * (1 - fabric), light, alpha * sole, top, left)
    if variant == "midsole":  # below the white, a thin grey outsole, a little darker than the surface
        outsole = sole & ~sole_of(solid, share * (1 - OUTSOLE))
        surface = scene[0, 0] / max(float(light[0, 0]), 1e-6)
        grey = np.full(3, float(surface.mean()) * rng.uniform(0.75, 0.9), np.float32)
        lay(scene, grey, np.ones_like(fabric), light, alpha * outsole, top, left)
        sole = outsole
    truth = np.zeros(scene.shape[:2], bool)
    truth[top : top + side, left : left + side] = solid
    sole_at = np.zeros_like(truth)
    sole_at[top : top + side, left : left + side] = sole
    return snapshot(scene, rng), truth, sole_at


def job(args):
    item, variant, seed = args
    picture, truth, sole = draw(item, variant, seed)
    pre = preprocess(picture)
    size = pre.mask.shape[::-1]
    truth, sole = (np.asarray(Image.fromarray(m).resize(size, Image.Resampling.NEAREST)) for m in (truth, sole))
    iou = (truth & pre.mask).sum() / max(1, (truth | pre.mask).sum())
    kept = (sole & pre.mask).sum() / max(1, sole.sum())
    return _slim(pre), float(iou), float(kept), abs(pre.tilt_deg)


def main():
    run = probe(__doc__, "soles", 60)
    shoes = np.isin(run.labels[run.items], SHOES)
    run.items, run.raw = run.items[shoes], run.raw[shoes]
    rows = []
    with ProcessPoolExecutor(2) as pool:
        for variant in VARIANTS:
            jobs = [(run.images[i], variant, run.args.seed * 100003 + int(i)) for i in run.items]
            done = list(tqdm(pool.map(job, jobs, chunksize=4), total=len(jobs), desc=variant))
            iou, kept, tilt = (np.array([d[k] for d in done]) for k in (1, 2, 3))
            row = {
                "variant": variant,
                **run.cell(run.answers([d[0] for d in done])),
                "mask_iou_median": float(np.median(iou)),
                "sole_kept_median": float(np.median(kept)),
                "sole_kept_under_half": float(np.mean(kept < 0.5)),
                "tilt_over_5_deg": float(np.mean(tilt > 5)),
            }
            rows.append(row)
            print(
                f"{variant:9s}: {summary(row)}  mask IoU {row['mask_iou_median']:.2f}  sole kept "
                f"{row['sole_kept_median']:.2f} (under half {row['sole_kept_under_half']:.1%})  "
                f"turned > 5 deg {row['tilt_over_5_deg']:.1%}"
            )
    meta = {"items": len(run.items), "model": run.args.model, "split": "val", "classes": list(SHOES)}
    print(f"raw 28x28 {run.raw.mean():.3f}; wrote {record(run.args.out, rows, torch.device('cpu'), meta)}")


if __name__ == "__main__":
    main()
