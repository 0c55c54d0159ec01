"""What a lamp's hard shadow costs: the same validation items photographed with and without one.

    python -m benchmarks.hard_shadows [--per-class 15] [--seed 1] [--out hard-shadows]

A probe for one failure, written apart from the photo benchmark's renderers: of those, only the held-out
`opaque` casts hard shadows, so no setting may be chosen on it. Each item is drawn twice from the same seed,
once without and once with a hard-edged shadow beside it (the silhouette, shifted 3-9 % of the item's size,
darkening the surface by 20-55 %, blurred by at most 2 px), on a light or mid surface with a gentle gradient,
noise and JPEG. Half the garments are pale (a pastel or white, faintly shaded by the item's greys), half any
colour (shaded as a shop photo's greys). It reports, for validation items only, the accuracy of the default
model (`resnet`) through the app's pipeline and notices, per kind and shadow, beside the items as 28x28.
Results go to benchmarks/results/<out>-cpu.json.
"""

import colorsys
import io
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from PIL import Image
from scipy import ndimage as ndi
from tqdm.auto import tqdm

from benchmarks._common import record
from benchmarks._probe import probe
from benchmarks.photos import _slim
from fmnist.photo import preprocess

KINDS = ("pale", "any colour")


def draw(item28: np.ndarray, pale: bool, shadow: bool, seed: int) -> Image.Image:
    """One photo of the item: the same picture for both values of `shadow` (the shadow's draws come last)."""
    rng = np.random.default_rng(seed)
    w, h = int(rng.uniform(700, 1200)), int(rng.uniform(600, 1000))
    side = int(rng.uniform(0.45, 0.7) * min(w, h))
    pa = np.asarray(Image.fromarray(item28).resize((side, side), Image.Resampling.BILINEAR), np.float32) / 255
    solid = ndi.binary_fill_holes(pa > 0.03)
    alpha = ndi.gaussian_filter(solid.astype(np.float32), 0.7)
    hue, sat = rng.random(), rng.uniform(0, 0.25)
    surface = np.array(colorsys.hsv_to_rgb(hue, sat, rng.uniform(0.55, 0.95)), np.float32)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    light = 1 + rng.uniform(0, 0.12) * (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5))
    scene = surface[None, None] * light[..., None]
    inside = pa[solid & (pa > 0.2)]
    pa = np.where(pa > 0.2, pa, inside.mean() if inside.size else 0.5)  # no bright rim where the greys fade out
    if pale:
        colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.3), rng.uniform(0.9, 1.0)), np.float32)
        fabric = 1 - rng.uniform(0.1, 0.3) * pa
    else:
        colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 1), rng.uniform(0.3, 1.0)), np.float32)
        fabric = 1 - 0.6 * pa
    top = (h - side) // 2 + int(rng.integers(-h // 12, h // 12 + 1))
    left = (w - side) // 2 + int(rng.integers(-w // 12, w // 12 + 1))
    top, left = int(np.clip(top, 0, h - side)), int(np.clip(left, 0, w - side))
    noise, quality = rng.uniform(0.004, 0.015), int(rng.integers(75, 95))
    direction, reach = rng.uniform(0, 2 * np.pi), rng.uniform(0.03, 0.09) * side
    depth, blur = rng.uniform(0.2, 0.55), rng.uniform(0, 2)
    if shadow:
        dy, dx = int(round(reach * np.sin(direction))), int(round(reach * np.cos(direction)))
        cast = np.zeros((h, w), np.float32)
        sy, sx = int(np.clip(top + dy, 0, h - side)), int(np.clip(left + dx, 0, w - side))
        cast[sy:sy + side, sx:sx + side] = solid
        cast = ndi.gaussian_filter(cast, blur) if blur > 0.3 else cast
        scene = scene * (1 - depth * cast)[..., None]
    patch = scene[top:top + side, left:left + side]
    garment = colour[None, None] * fabric[..., None] * light[top:top + side, left:left + side, None]
    scene[top:top + side, left:left + side] = alpha[..., None] * garment + (1 - alpha[..., None]) * patch
    scene = scene + rng.normal(0, noise, (h, w, 1))
    out = io.BytesIO()
    Image.fromarray((np.clip(scene, 0, 1) * 255).round().astype(np.uint8)).save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue()))


def job(args):
    item, pale, shadow, seed = args
    return _slim(preprocess(draw(item, pale, shadow, seed)))


def main():
    run = probe(__doc__, "hard-shadows", 15)
    args, images, labels, items, answers, raw = (run.args, run.images, run.labels, run.items, run.answers,
                                                  run.raw)
    rows = []
    with ProcessPoolExecutor(2) as pool:
        for kind in KINDS:
            for shadow in (False, True):
                jobs = [(images[i], kind == "pale", shadow, args.seed * 100003 + int(i)) for i in items]
                pres = list(tqdm(pool.map(job, jobs, chunksize=4), total=len(jobs), desc=f"{kind}/{shadow}"))
                got = answers(pres)
                right = np.array([a == labels[i] for (a, _), i in zip(got, items)])
                diff = raw.astype(float) - right
                rows.append({"kind": kind, "shadow": shadow, "raw_acc": float(raw.mean()),
                             "photo_acc": float(right.mean()), "gap": float(diff.mean()),
                             "gap_se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
                             "flagged": float(np.mean([f for _, f in got]))})
                print(f"{kind:10s} shadow={shadow!s:5s} photo {right.mean():.3f}  gap {diff.mean():+.3f} "
                      f"± {rows[-1]['gap_se']:.3f}  notices {rows[-1]['flagged']:.1%}")
    path = record(args.out, rows, torch.device("cpu"), {"items": len(items), "model": args.model, "split": "val"})
    print(f"raw 28x28 {raw.mean():.3f}; wrote {path}")


if __name__ == "__main__":
    main()
