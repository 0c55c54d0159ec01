"""Does a thing that lies mostly outside the picture mark a non-garment? Where the found item runs off the
picture's edge, its reach along that side against the square root of its share of the picture says how long the
cut is against the item's size: a round thing cut through its middle (half outside) reaches sqrt(8 / pi) = 1.6,
less where less of it is outside.

    python -m lab.edge_cut [--per-class 10] [--seed 1] [--out edge-cut-val]

For validation pictures only: garments cut by the frame (fmnist.photo.render.cut, a tenth to a half of the item
outside), the non-garments of the old and new kinds at seeds 1 and 2, and every renderer's pictures at every level
(whole garments); it reports the ratio's spread for each and the share over several limits. Results go to
lab/results/<out>-cpu.json.
"""

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from tqdm.auto import tqdm

from fmnist.data import load_splits, stratified_split
from fmnist.notice.rules import cut_ratio
from fmnist.photo import preprocess
from fmnist.photo.render import RENDERERS, non_garments
from fmnist.photo.render.cut import cut_photo
from fmnist.photo.render.strays import strays
from lab._common import record
from lab._probe import _drawn
from lab.cut_hint import _rendered

CUTS = (0.1, 0.2, 0.3, 0.4, 0.5)
LIMITS = (1.2, 1.4, 1.6, 1.8)


def _ratio(picture):
    return cut_ratio(preprocess(picture))


def row(pictures: str, kind: str, ratios: list[float]) -> dict:
    r = np.asarray(ratios)
    return {
        "pictures": pictures,
        "kind": kind,
        "n": len(r),
        "max": float(r.max()),
        "p99": float(np.quantile(r, 0.99)),
        **{f"over_{limit:g}": float(np.mean(r > limit)) for limit in LIMITS},
    }


def validation_items(per_class: int, seed: int) -> tuple[list, np.ndarray]:
    """per_class validation items of every class (their images, their indices), drawn with seed."""
    val = load_splits(allow_download=False).val
    items = stratified_split(val.labels.numpy(), 10 * per_class, seed)[1]
    return [val.images[i].numpy() for i in items], items


def cut_garments(pool, images, items, seed: int):
    """(share, the preprocessed pictures) for each of CUTS: the items photographed with that share of each outside
    the frame (fmnist.photo.render.cut), in pool's workers."""
    for share in CUTS:
        jobs = [(cut_photo, img, share, seed * 100003 + int(i)) for img, i in zip(images, items)]
        yield share, list(tqdm(pool.map(_drawn, jobs, chunksize=4), total=len(jobs), desc=f"cut {share}"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="edge-cut-val")
    args = p.parse_args()
    images, items = validation_items(args.per_class, args.seed)
    rows = []
    with ProcessPoolExecutor(2) as pool:
        for share, pres in cut_garments(pool, images, items, args.seed):
            rows.append(row("garments", f"cut {share:g}", [cut_ratio(pre) for pre in pres]))
        for renderer, (_, levels) in RENDERERS.items():
            for level in levels:
                jobs = [(renderer, level, img, args.seed, int(i)) for img, i in zip(images, items)]
                pres = tqdm(pool.map(_rendered, jobs, chunksize=4), total=len(jobs), desc=f"{renderer} {level}")
                rows.append(row("garments", f"{renderer}/{level}", [cut_ratio(pre) for pre in pres]))
        kinds = {}
        for seed in (1, 2):
            pictures = non_garments(seed) + strays(seed)
            for (kind, _), ratio in zip(pictures, pool.map(_ratio, [pic for _, pic in pictures], chunksize=2)):
                kinds.setdefault(kind.split(":")[0], []).append(ratio)
    rows += [row("non-garments", kind, ratios) for kind, ratios in sorted(kinds.items())]
    rows.append(row("non-garments", "all", [r for ratios in kinds.values() for r in ratios]))
    for r in rows:
        print(
            f"{r['pictures']:>12} {r['kind']:>16} n={r['n']:4d} max {r['max']:5.2f} "
            + " ".join(f"{k[5:]}: {100 * v:5.1f} %" for k, v in r.items() if k.startswith("over_")),
            flush=True,
        )
    path = record(
        args.out, rows, torch.device("cpu"), {"items": len(items), "split": "val", "seed": args.seed}, row_per_line=True
    )
    print(f"({path})")


if __name__ == "__main__":
    main()
