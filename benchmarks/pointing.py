"""The pointing game on photos: is the hottest point of the heat map on the garment?

Test items are drawn as photos by the photo benchmark's renderers (every renderer, its everyday-like level:
scenes/tint/opaque everyday, pattern textured), through the app's whole pipeline, and each model's maps are
made on the 28x28 it sees. The garment is what the renderer drew: the item's own 28x28 (pixels over a tenth of
its brightest), in the data set's framing, which the pipeline reproduces for a garment it finds whole. A hit is
a hottest point on the garment or within one pixel of it. The honest baseline is a blob at the centre: items
are centred, so the centre is nearly always on the garment. A miss is a wandering map or a garment the
pipeline framed otherwise (a cut shadow, a tilt undone); both count against the map, as a user would see it.

    python -m benchmarks.pointing --per-renderer 75     # benchmarks/results/pointing-cpu.json
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from scipy.ndimage import binary_dilation

from benchmarks._common import ROOT, record
from fmnist.checkpoints import store
from fmnist.data import load_raw
from fmnist.explain.faithfulness import blob_maps
from fmnist.explain.maps import METHODS, explain

LEVEL = {"scenes": "everyday", "tint": "everyday", "opaque": "everyday", "pattern": "textured"}


def _render_and_see(args) -> np.ndarray:
    from fmnist.photo import preprocess
    from fmnist.photo.render import render_item

    renderer, item, index = args
    return preprocess(render_item(renderer, LEVEL[renderer], item, 0, index)).pixels


def hits(maps: np.ndarray, garments: np.ndarray) -> np.ndarray:
    """(N,) whether each map's hottest point lies on its garment mask, or within one pixel of it."""
    hot = maps.reshape(len(maps), -1).argmax(1)
    near = np.stack([binary_dilation(g) for g in garments]).reshape(len(garments), -1)
    return near[np.arange(len(maps)), hot]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-renderer", type=int, default=75)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    raw = load_raw(allow_download=False)
    rng = np.random.default_rng(0)
    index = rng.choice(len(raw.test_labels), args.per_renderer * len(LEVEL), replace=False)
    jobs = [
        (r, raw.test_images[i], int(i))
        for k, r in enumerate(LEVEL)
        for i in index[k * args.per_renderer : (k + 1) * args.per_renderer]
    ]
    with ProcessPoolExecutor(args.workers) as pool:
        seen = np.stack(list(pool.map(_render_and_see, jobs, chunksize=8)))
    items = np.stack([j[1] for j in jobs])
    garments = items > 0.1 * items.reshape(len(items), -1).max(1)[:, None, None]
    renderers = np.array([j[0] for j in jobs])
    x = torch.from_numpy(seen).float().div(255)[:, None]
    rows = []
    for folder in store.model_folders(ROOT / "checkpoints"):
        model, _ = store.load_folder(folder)
        for method in (*METHODS, "blob"):
            maps = blob_maps(len(x)) if method == "blob" else explain(model, x, method=method)
            hit = hits(maps, garments)
            rows.append(
                {
                    "model": folder.name,
                    "map": method,
                    "pointing": float(hit.mean()),
                    **{f"pointing_{r}": float(hit[renderers == r].mean()) for r in LEVEL},
                }
            )
            print(folder.name, method, f"{100 * hit.mean():.1f} %", flush=True)
    print(record("pointing", rows, torch.device("cpu"), {"per_renderer": args.per_renderer, "levels": LEVEL}))


if __name__ == "__main__":
    main()
