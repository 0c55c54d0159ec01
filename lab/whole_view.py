"""Does the model, shown the whole picture rather than the item found in it, tell garment photos from
non-garments? A detector on features of the whole picture, as the issue on judging the whole picture suggests.

    python -m lab.whole_view [--per-cell 15] [--seeds 1 2 30 31 32 33] [--out whole-view-val]

The whole view: the picture's grey, as its distance from the median of its border (so that the backdrop is
black and anything unlike it bright, as in the data set), shrunk to fit 28x28. Validation items drawn by every
renderer at every level, and the `strays` kinds at validation seeds; each scored by the shipped detector
(Mahalanobis distance and outlier head) on its whole view and on the 28x28 the pipeline makes. Per score: the
AUROC of non-garments against garments, and the share of each kind over the garments' 99th percentile. Results go
to lab/results/<out>-cpu.json.
"""

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from PIL import Image

from fmnist.data import load_splits, stratified_split
from fmnist.photo import preprocess
from fmnist.photo.render import RENDERERS, render_item
from fmnist.photo.render.strays import strays
from fmnist.serving.predict import Predictor, detector_scores
from lab._common import ROOT, record


def whole_view(picture: Image.Image) -> np.ndarray:
    """(28, 28) uint8: the picture's distance from its border's median grey, shrunk to fit, centred."""
    g = np.asarray(picture.convert("L"), np.float32)
    h, w = g.shape
    ring = np.r_[g[: h // 20].ravel(), g[-h // 20 :].ravel(), g[:, : w // 20].ravel(), g[:, -w // 20 :].ravel()]
    d = np.abs(g - np.median(ring))
    d = d / max(np.percentile(d, 99.5), 1.0) * 255
    small = Image.fromarray(np.clip(d, 0, 255).astype(np.uint8))
    s = 28 / max(h, w)
    small = small.resize((max(1, round(w * s)), max(1, round(h * s))), Image.Resampling.LANCZOS)
    out = Image.new("L", (28, 28))
    out.paste(small, ((28 - small.width) // 2, (28 - small.height) // 2))
    return np.asarray(out)


def _views(picture: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    return whole_view(picture), preprocess(picture).pixels


def _garment(job):
    renderer, level, item, seed, index = job
    return _views(render_item(renderer, level, item, seed, index))


def main():
    from sklearn.metrics import roc_auc_score

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-cell", type=int, default=15)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 30, 31, 32, 33])
    p.add_argument("--out", default="whole-view-val")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    val = load_splits(allow_download=False).val
    images, labels = val.images.numpy(), val.labels.numpy()
    items = stratified_split(labels, args.per_cell, 1)[1]
    jobs = [
        (renderer, level, images[i], 100003 + int(i), n)
        for renderer, (_, levels) in RENDERERS.items()
        for level in levels
        for n, i in enumerate(items)
    ]
    others = [(kind, picture) for seed in args.seeds for kind, picture in strays(seed)]
    with ProcessPoolExecutor(2) as pool:
        views = list(pool.map(_garment, jobs, chunksize=4))
        views += list(pool.map(_views, [picture for _, picture in others], chunksize=2))
    kinds = np.asarray(["garment"] * len(jobs) + [kind for kind, _ in others])
    entry = Predictor.from_source(ROOT / "checkpoints", only="resnet").models["resnet"]
    garment = kinds == "garment"
    rows = []
    for view, which in (("whole picture", 0), ("28x28 found", 1)):
        pixels = np.stack([v[which] for v in views])
        feats = entry.model.penultimate(torch.from_numpy(pixels[:, None].astype(np.float32) / 255))
        maha, thing, _ = detector_scores(entry, feats)
        for score, values in (("mahalanobis", np.asarray(maha)), ("outlier head", np.asarray(thing))):
            limit = np.quantile(values[garment], 0.99)
            row = {"view": view, "score": score, "auroc": round(float(roc_auc_score(~garment, values)), 3)}
            for kind in sorted(set(kinds[~garment].tolist())):
                row[kind] = round(float((values[kinds == kind] > limit).mean()), 3)
            rows.append(row)
            print(row)
    meta = {"per_cell": args.per_cell, "seeds": args.seeds, "garments": int(garment.sum()), "others": len(others)}
    print(f"({record(args.out, rows, torch.device('cpu'), meta)})")


if __name__ == "__main__":
    main()
