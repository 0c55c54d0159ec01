"""Domain-randomised training data: training items rendered as photographs, then turned back into 28x28 by the
app's own pipeline (fmnist.photo), so that a model can train on what the pipeline makes of photos.

    python -m fmnist.photo.build                        # the default cache (train + val parts)
    python -m fmnist.photo.build --train-items 4000 --val-items 800 --workers 2   # what data/ holds

- Items come from the training split only (the same seeded split train.py uses): the `train` part from its
  training items, the `val` part from its validation items (for choosing the mix). Test items are never drawn.
- Each item gets a random renderer, level and scene from its own seed, so the cache is deterministic: the same
  flags always give the same bytes. The held-out renderer (`opaque`, by default) is never used for the `train`
  part; the `val` part renders every renderer, so the held-out one can be reported separately.
- Pictures the pipeline finds no item in are kept out of `train` (there is nothing to learn from a blank).
- Written as one .npz (28x28 uint8 images, labels, renderer, level, print and turn of each, the command, and the
  sha256 of the pipeline's modules that made them), to data/photo-data-v6.npz (kept in the repository, 2.3 MB)
  unless --out says otherwise. Rendering and preprocessing run in worker processes.
- --print-share draws that share of items as printed garments (fmnist.training.prints), --tilt-share lays that
  share down turned by up to --tilt-deg; the repository's v6 was built with 0.3, 0.3 and 30 (the command is in
  the file).
  --floor-share draws that share as light garments on dark floors (render.floors) in place of their renderer.
- A change to the pipeline (fmnist.photo.cache.PIPELINE_MODULES) makes the cache stale, and loading it then warns:
  rebuild it under a new name.
  v3: the graph-cut pipeline, turns undone up to 30 degrees, printed and turned garments; the print recipe was
  chosen on it. v4: the same, by the pipeline that no longer takes a grey garment's body for its shadow; the
  bundled resnet trained on it (it left the tree: `git show 451a8f1:data/photo-data-v4.npz`). v6: the same, by
  the pipeline that reads a garment lighter than a light backdrop by its darkness against white; the detectors
  are fitted on it, and new runs train on it.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from tqdm.auto import tqdm

from fmnist.photo.cache import DEFAULT_PATH, pipeline_sha256, save_photo_data
from fmnist.photo.render import RENDERERS, floors, tilt_item
from fmnist.training.prints import print_item

HELD_OUT = ("opaque",)


def _job(args):
    """Render one item with its own seed and preprocess it, in a worker process."""
    from fmnist.photo.pipeline import preprocess

    item, seed, index, renderers, variation = args
    rng = np.random.default_rng([seed, 7919, index])
    renderer = renderers[rng.integers(len(renderers))]
    render, levels = RENDERERS[renderer]
    level = levels[rng.integers(len(levels))]
    # the variations draw from a generator of their own, so that without them a picture is what it always was
    vary = np.random.default_rng([seed, 4099, index])
    printed = bool(vary.random() < variation["print_share"])
    if printed:  # a printed garment: the print drawn inside the item's silhouette, then photographed
        item = print_item(item, vary)
    tilt = (
        float(vary.uniform(-variation["tilt_deg"], variation["tilt_deg"]))
        if vary.random() < variation["tilt_share"]
        else 0.0
    )
    if tilt:  # an item laid down turned
        item = tilt_item(item, tilt)
    if vary.random() < variation.get("floor_share", 0.0):  # a light garment on a dark floor, in place of the scene
        renderer, level = "floors", floors.LEVELS[vary.integers(len(floors.LEVELS))]
        render = floors.render
    pre = preprocess(render(item, level, rng))
    return pre.pixels, pre.found_item, renderer, level, printed, tilt


def build(images, labels, indices, seed, renderers, workers, desc, keep_blank, variation=None) -> dict:
    variation = variation or {"print_share": 0.0, "tilt_share": 0.0, "tilt_deg": 0.0}
    jobs = [(images[i], seed, int(i), renderers, variation) for i in indices]
    out = {"images": [], "labels": [], "renderer": [], "level": [], "source_index": [], "printed": [], "tilt_deg": []}
    with ProcessPoolExecutor(workers) as pool:
        for i, (pixels, found, renderer, level, printed, tilt) in zip(
            indices, tqdm(pool.map(_job, jobs, chunksize=8), total=len(jobs), desc=desc)
        ):
            if not found and not keep_blank:
                continue
            out["images"].append(pixels)
            out["labels"].append(int(labels[i]))
            out["renderer"].append(renderer)
            out["level"].append(level)
            out["source_index"].append(int(i))
            out["printed"].append(printed)
            out["tilt_deg"].append(tilt)
    return {k: np.asarray(v) for k, v in out.items()}


def main(argv=None) -> int:
    from fmnist.data import load_raw, stratified_split

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--train-items", type=int, default=4000, help="training items to render (default %(default)s)")
    p.add_argument("--val-items", type=int, default=800, help="validation items to render (default %(default)s)")
    p.add_argument("--held-out", default=",".join(HELD_OUT), help="renderers never used for the train part")
    p.add_argument("--seed", type=int, default=0, help="the split's seed (train.py's --seed) and the draws' seed")
    p.add_argument("--val-size", type=int, default=6000, help="train.py's --val-size")
    p.add_argument(
        "--print-share",
        type=float,
        default=0.0,
        help="share of items drawn as printed garments (fmnist.training.prints), in both parts",
    )
    p.add_argument("--tilt-share", type=float, default=0.0, help="share of items laid down turned, in both parts")
    p.add_argument("--tilt-deg", type=float, default=30.0, help="the largest turn of a turned item (degrees)")
    p.add_argument(
        "--floor-share",
        type=float,
        default=0.0,
        help="share of items drawn as light garments on dark floors (render.floors), in both parts",
    )
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
    variation = {
        "print_share": args.print_share,
        "tilt_share": args.tilt_share,
        "tilt_deg": args.tilt_deg,
        "floor_share": args.floor_share,
    }
    train = build(
        raw.train_images,
        raw.train_labels,
        picked_train,
        args.seed,
        train_renderers,
        args.workers,
        "train items",
        keep_blank=False,
        variation=variation,
    )
    val = build(
        raw.train_images,
        raw.train_labels,
        picked_val,
        args.seed + 1,
        tuple(RENDERERS),
        args.workers,
        "val items",
        keep_blank=True,
        variation=variation,
    )
    seconds = time.perf_counter() - t0
    meta = {
        "command": "python -m fmnist.photo.build " + " ".join(sys.argv[1:] if argv is None else argv),
        "train_renderers": list(train_renderers),
        "held_out": held_out,
        "seed": args.seed,
        "val_size": args.val_size,
        "build_seconds": round(seconds, 1),
        "workers": args.workers,
        "pipeline_sha256": pipeline_sha256(),
        "variation": variation,
    }
    path = save_photo_data(args.out, train, val, meta)
    print(
        f"{len(train['labels'])} train + {len(val['labels'])} val pictures in {seconds:.0f} s -> {path} "
        f"({path.stat().st_size / 1e6:.1f} MB)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
