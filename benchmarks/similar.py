"""Similar items (fmnist/serving/gallery.py): how fast a query is, and how often the 8 nearest training images'
majority class agrees with the model's own answer.

    python -m benchmarks.similar [--per-class 10] [--checkpoints checkpoints]

Per model:
- query time: one `SimilarItems.nearest` call (normalise, project, 10,000 cosine similarities, top 8), the
  median and 95th percentile over 2,000 queries of test-image features, on one thread;
- agreement on the 10,000 test images (28x28, as the app receives them);
- agreement on photo-benchmark pictures: validation items drawn by every renderer at every level
  (--per-class items per class, renderer and level), through the app's pipeline.
A majority is the most common class among the 8 (ties: the nearest of the tied classes).
Results go to benchmarks/results/similar-cpu.json.
"""

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from tqdm.auto import tqdm

from benchmarks._common import ROOT, record
from benchmarks.photos import RENDERERS, render_job
from fmnist.data import load_raw, load_splits, stratified_split
from fmnist.evaluation.reports import format_table
from fmnist.serving.gallery import NEIGHBOURS
from fmnist.serving.predict import Predictor


def majority(labels: list[int]) -> int:
    counts = np.bincount(labels, minlength=10)
    best = np.flatnonzero(counts == counts.max())
    return next(label for label in labels if label in best)  # labels come nearest first


def agreement(entry, images: np.ndarray) -> float:
    x = torch.as_tensor(images).float().div(255.0)[:, None]
    agree = []
    with torch.inference_mode():
        for i in range(0, len(x), 500):
            feats = entry.model.penultimate(x[i : i + 500])
            preds = entry.model.classify_features(feats).argmax(1)
            for f, pred in zip(feats, preds):
                agree.append(majority([label for _, label, _ in entry.similar.nearest(f)]) == int(pred))
    return float(np.mean(agree))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=10, help="photo items per class, renderer and level")
    p.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(1)
    predictor = Predictor.from_source(args.checkpoints)
    raw = load_raw(allow_download=False)
    val = load_splits(allow_download=False).val
    items = stratified_split(val.labels.numpy(), 10 * args.per_class, 1)[1]
    cells = [(r, lv) for r, (_, levels) in RENDERERS.items() for lv in levels]
    jobs = [(r, lv, val.images[i].numpy(), 1, int(i)) for r, lv in cells for i in items]
    with ProcessPoolExecutor(args.workers) as pool:
        photos = np.stack(
            [
                pre.pixels
                for pre, _ in tqdm(pool.map(render_job, jobs, chunksize=4), total=len(jobs), desc="photo pictures")
            ]
        )
    rows = []
    for name, entry in predictor.models.items():
        if entry.similar is None:
            continue
        x = torch.as_tensor(raw.test_images[:2000]).float().div(255.0)[:, None]
        with torch.inference_mode():
            feats = entry.model.penultimate(x)
        for f in feats[:50]:  # warm-up
            entry.similar.nearest(f)
        times = []
        for f in feats:
            t0 = time.perf_counter()
            entry.similar.nearest(f, NEIGHBOURS)
            times.append(time.perf_counter() - t0)
        rows.append(
            {
                "model": name,
                "dims": int(entry.similar.features.shape[1]),
                "query_ms_median": 1000 * float(np.median(times)),
                "query_ms_p95": 1000 * float(np.percentile(times, 95)),
                "agree_test": agreement(entry, raw.test_images),
                "agree_photos": agreement(entry, photos),
            }
        )
        print(rows[-1])
    path = record(
        "similar",
        rows,
        torch.device("cpu"),
        {"photo_pictures": len(photos), "gallery_size": int(len(entry.similar.gallery.labels)), "threads": 1},
    )
    print(
        format_table(
            rows,
            [
                ("model", "model", ""),
                ("dims", "dims", "d"),
                ("query_ms_median", "query ms (median)", ".2f"),
                ("query_ms_p95", "p95", ".2f"),
                ("agree_test", "agrees, test set", ".3f"),
                ("agree_photos", "agrees, photo pictures", ".3f"),
            ],
        )
    )
    print(f"({path})")


if __name__ == "__main__":
    main()
