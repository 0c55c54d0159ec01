"""Domain-randomised training data: training items rendered as photographs, then turned back into 28x28 by the
app's own pipeline (fmnist.preprocess), so that a model can train on what the pipeline makes of photos.

    python scripts/build_photo_data.py                        # the default cache (train + val parts)
    python scripts/build_photo_data.py --train-items 4000 --val-items 800 --workers 2   # what data/ holds

- Items come from the training split only (the same seeded split train.py uses): the `train` part from its
  training items, the `val` part from its validation items (for choosing the mix). Test items are never drawn.
- Each item gets a random renderer, level and scene from its own seed, so the cache is deterministic: the same
  flags always give the same bytes. The held-out renderer (`opaque`, by default) is never used for the `train`
  part; the `val` part renders every renderer, so the held-out one can be reported separately.
- Pictures the pipeline finds no item in are kept out of `train` (there is nothing to learn from a blank).
- Written as one .npz (28x28 uint8 images, labels, renderer and level of each, the command, and the sha256 of
  fmnist/preprocess.py that made them), to data/photo-data-v2.npz (kept in the repository, about 2.3 MB) unless
  --out says otherwise. Rendering and preprocessing run in worker processes.
- A change to fmnist/preprocess.py makes the cache stale: rebuild it under a new name, and keep the old file
  while a bundled model's card names it (v1: the watershed pipeline, which the bundled resnet trained on;
  v2: the graph-cut pipeline, with every renderer's `pale` level).
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from fmnist.photo_data import DEFAULT_PATH, save_photo_data  # noqa: E402

HELD_OUT = ("opaque",)


def _job(args):
    """Render one item with its own seed and preprocess it, in a worker process."""
    from photos import RENDERERS  # the benchmark's renderers; imported in the worker

    from fmnist.preprocess import preprocess

    item, seed, index, renderers = args
    rng = np.random.default_rng([seed, 7919, index])
    renderer = renderers[rng.integers(len(renderers))]
    render, levels = RENDERERS[renderer]
    level = levels[rng.integers(len(levels))]
    pre = preprocess(render(item, level, rng))
    return pre.pixels, pre.found_item, renderer, level


def build(images, labels, indices, seed, renderers, workers, desc, keep_blank) -> dict:
    jobs = [(images[i], seed, int(i), renderers) for i in indices]
    out = {"images": [], "labels": [], "renderer": [], "level": [], "source_index": []}
    with ProcessPoolExecutor(workers) as pool:
        for i, (pixels, found, renderer, level) in zip(indices, tqdm(pool.map(_job, jobs, chunksize=8),
                                                                      total=len(jobs), desc=desc)):
            if not found and not keep_blank:
                continue
            out["images"].append(pixels)
            out["labels"].append(int(labels[i]))
            out["renderer"].append(renderer)
            out["level"].append(level)
            out["source_index"].append(int(i))
    return {k: np.asarray(v) for k, v in out.items()}


def main(argv=None) -> int:
    from photos import RENDERERS

    from fmnist.data import load_raw, sha256, stratified_split

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-items", type=int, default=4000, help="training items to render (default %(default)s)")
    p.add_argument("--val-items", type=int, default=800, help="validation items to render (default %(default)s)")
    p.add_argument("--held-out", default=",".join(HELD_OUT), help="renderers never used for the train part")
    p.add_argument("--seed", type=int, default=0, help="the split's seed (train.py's --seed) and the draws' seed")
    p.add_argument("--val-size", type=int, default=6000, help="train.py's --val-size")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=str(DEFAULT_PATH))
    args = p.parse_args(argv)
    held_out = [r for r in args.held_out.split(",") if r]
    train_renderers = tuple(r for r in RENDERERS if r not in held_out)
    raw = load_raw(allow_download=False)
    train_idx, val_idx = stratified_split(raw.train_labels, args.val_size, args.seed)
    rng = np.random.default_rng(args.seed)
    picked_train = np.sort(rng.choice(train_idx, min(args.train_items, len(train_idx)), replace=False))
    picked_val = np.sort(rng.choice(val_idx, min(args.val_items, len(val_idx)), replace=False))
    t0 = time.perf_counter()
    train = build(raw.train_images, raw.train_labels, picked_train, args.seed, train_renderers, args.workers,
                  "train items", keep_blank=False)
    val = build(raw.train_images, raw.train_labels, picked_val, args.seed + 1, tuple(RENDERERS), args.workers,
                "val items", keep_blank=True)
    seconds = time.perf_counter() - t0
    meta = {"command": "python scripts/build_photo_data.py " + " ".join(sys.argv[1:] if argv is None else argv),
            "train_renderers": list(train_renderers), "held_out": held_out, "seed": args.seed,
            "val_size": args.val_size, "build_seconds": round(seconds, 1), "workers": args.workers,
            "preprocess_sha256": sha256(ROOT / "fmnist" / "preprocess.py")}
    path = save_photo_data(args.out, train, val, meta)
    print(f"{len(train['labels'])} train + {len(val['labels'])} val pictures in {seconds:.0f} s -> {path} "
          f"({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
