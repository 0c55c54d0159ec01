"""Does converting the found item into its 28x28 the way the data set's own conversion did keep its inside better?

The data set's images were made from shop photos by subsampling to 28 px, sharpening with a Gaussian operator
and negating (shared/FASHION_MNIST_FACTS.md): no stretch, so a mid-grey body stays mid-grey and only the
sharpened outline reaches white. The pipeline resizes with Lanczos and stretches each item's peak to 255, which
lifts a dark or mid-grey body to near white and averages thin dark lines into the body. This draws validation
items with every renderer at every level, keeps the found item's intensity crop, and converts it in several
ways:

- `lanczos, stretched`: the pipeline as it is;
- `lanczos, sharpened, stretched`: the data set's sharpening added (unsharp mask, Gaussian sigma 1, amount 1);
- `lanczos, sharpened`: sharpened, clipped, not stretched (a faint item is lifted only to a floor, FLOOR);
- `subsampled, sharpened`: rows and columns picked as the data set's conversion did, then sharpened, not
  stretched.

Each is scored by how close its 28x28 is to the item the photo shows (the mean absolute grey-level difference
and the brightening, in grey levels, inside the item) and by the default model's accuracy.

    python -m lab.conversion [--per-class 10] [--out conversion-val]

Validation only; results go to lab/results/<out>-cpu.json.
"""

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from PIL import Image
from scipy import ndimage as ndi
from tqdm.auto import tqdm

from fmnist.checkpoints import store
from fmnist.data import load_splits, stratified_split
from fmnist.photo import pipeline
from fmnist.photo.render import RENDERERS, render_item
from fmnist.training.finetune import accuracy
from lab._common import ROOT, record

FLOOR = 0.5  # a peak below this is lifted to it, not to white: a pale item keeps some of its faintness


def _resized(crop: np.ndarray, method) -> tuple[np.ndarray, tuple[int, int]]:
    ch, cw = crop.shape
    fit = 28 / max(ch, cw)
    new_w, new_h = max(1, round(cw * fit)), max(1, round(ch * fit))
    if method == "subsample":
        rows = np.minimum((np.arange(new_h) + 0.5) * ch / new_h, ch - 1).astype(int)
        cols = np.minimum((np.arange(new_w) + 0.5) * cw / new_w, cw - 1).astype(int)
        return crop[np.ix_(rows, cols)], (new_h, new_w)
    small = Image.fromarray(crop.astype(np.float32), mode="F").resize(
        (new_w, new_h), Image.Resampling.LANCZOS, reducing_gap=3.0
    )
    return np.asarray(small, dtype=np.float64).clip(0, None), (new_h, new_w)


def _sharpened(small: np.ndarray) -> np.ndarray:
    padded = np.pad(small, 2)
    return (padded + (padded - ndi.gaussian_filter(padded, 1.0)))[2:-2, 2:-2].clip(0, None)


def convert(crop: np.ndarray, way: str) -> np.ndarray:
    small, (h, w) = _resized(crop, "subsample" if way.startswith("subsampled") else "lanczos")
    if "sharpened" in way:
        small = _sharpened(small)
    peak = small.max()
    if peak > 0:
        small = small / (peak if "stretched" in way else max(FLOOR, min(peak, 1.0)))
    canvas = np.zeros((28, 28), np.uint8)
    y0, x0 = (29 - h) // 2, (29 - w) // 2
    canvas[y0 : y0 + h, x0 : x0 + w] = (small.clip(0, 1) * 255).round().astype(np.uint8)
    return canvas


WAYS = ("lanczos, stretched", "lanczos, sharpened, stretched", "lanczos, sharpened", "subsampled, sharpened")


def _job(job):
    renderer, level, item, seed, index = job
    crops = []
    real = pipeline.to_28
    pipeline.to_28 = lambda crop, margin_frac=0.0: crops.append(crop) or real(crop, margin_frac)
    try:
        pre = pipeline.preprocess(render_item(renderer, level, item, seed, index))
    finally:
        pipeline.to_28 = real
    return np.stack([convert(crops[0], way) for way in WAYS]) if pre.found_item else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--model", default="resnet")
    p.add_argument("--out", default="conversion-val")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    val = load_splits(allow_download=False).val
    images, labels = val.images.numpy(), val.labels.numpy()
    items = stratified_split(labels, 10 * args.per_class, 3)[1]
    cells = [(r, lv) for r, (_, levels) in RENDERERS.items() for lv in levels]
    jobs = [(r, lv, images[i], 3, n) for r, lv in cells for n, i in enumerate(items)]
    with ProcessPoolExecutor(2) as pool:
        out = list(tqdm(pool.map(_job, jobs, chunksize=4), total=len(jobs), desc="pictures"))
    model, _ = store.load_folder(ROOT / "checkpoints" / args.model)
    model.eval()
    rows = []
    for c, (renderer, level) in enumerate(cells):
        got = [(o, items[n]) for n, o in enumerate(out[c * len(items) : (c + 1) * len(items)]) if o is not None]
        raw = images[[i for _, i in got]].astype(float)
        y = torch.from_numpy(labels[[i for _, i in got]])
        inside = raw > 10
        row = {"renderer": renderer, "level": level, "found": len(got)}
        for k, way in enumerate(WAYS):
            px = np.stack([o[k] for o, _ in got])
            diff = px.astype(float) - raw
            row[f"{way}: acc"] = accuracy(model, torch.from_numpy(px), y)
            row[f"{way}: abs diff"] = float(np.abs(diff)[inside].mean())
            row[f"{way}: brighter by"] = float(np.median(diff[inside]))
        rows.append(row)
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
    total = {"renderer": "all", "level": "", "found": sum(r["found"] for r in rows)}
    for key in rows[0]:
        if ":" in key:
            total[key] = float(np.average([r[key] for r in rows], weights=[r["found"] for r in rows]))
    rows.append(total)
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in total.items()})
    print("wrote", record(args.out, rows, torch.device("cpu"), {"per_class": args.per_class, "floor": FLOOR}))


if __name__ == "__main__":
    main()
