"""How often the app's "cut off" hint fires: on garments cut by the picture's edge, and on whole ones.

    python -m lab.cut_hint [--per-class 10] [--seed 1] [--out cut-hint-val]

The hint (fmnist.notice.rules.picture_hints) fires where the found item lies along more than CUT_REACH of one side of
the picture, but not along all four. For validation items only, it reports the share of pictures it fires on at
several limits (the shipped CUT_REACH among them): the cropped probe's pictures (lab.cropped: whole, and
with a tenth and a fifth of the item outside the frame), every renderer's pictures at every level (none of which
cuts an item), and the items as 28x28 images. Results go to lab/results/<out>-cpu.json.
"""

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from benchmarks.photos import render_job
from fmnist.data import load_splits, stratified_split
from fmnist.notice.rules import CUT_REACH, picture_hints
from fmnist.photo import preprocess
from fmnist.photo.render import RENDERERS
from fmnist.photo.render.cut import CUTS, cut_photo
from lab._common import record
from lab._probe import _drawn

LIMITS = (0.0, CUT_REACH, 0.05, 0.1)


def _rendered(args):
    return render_job(args)[0]


def shares(pres: list) -> dict:
    """The share of pictures the hint fires on at each limit."""
    return {
        f"hinted_at_{limit:g}": float(np.mean([bool(picture_hints(pre, limit)) for pre in pres])) for limit in LIMITS
    }


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="cut-hint-val")
    args = p.parse_args()
    val = load_splits(allow_download=False).val
    items = stratified_split(val.labels.numpy(), 10 * args.per_class, args.seed)[1]
    images = [val.images[i].numpy() for i in items]
    rows = []

    def add(kind: str, level: str, found: list) -> None:
        rows.append({"pictures": kind, "level": level, "n": len(found), **shares(found)})
        print(
            f"{kind:>8} {level:>9}: "
            + "  ".join(f"{k[10:]} {100 * v:5.1f} %" for k, v in rows[-1].items() if k.startswith("hinted")),
            flush=True,
        )

    with ProcessPoolExecutor(2) as pool:
        for name, share in CUTS.items():
            jobs = [(cut_photo, img, share, args.seed * 100003 + int(i)) for img, i in zip(images, items)]
            add("cropped", name, list(tqdm(pool.map(_drawn, jobs, chunksize=4), total=len(jobs), desc=name)))
        for renderer, (_, levels) in RENDERERS.items():
            for level in levels:
                jobs = [(renderer, level, img, args.seed, int(i)) for img, i in zip(images, items)]
                add(
                    renderer,
                    level,
                    list(tqdm(pool.map(_rendered, jobs, chunksize=4), total=len(jobs), desc=f"{renderer} {level}")),
                )
    add("28x28", "", [preprocess(Image.fromarray(img)) for img in images])
    path = record(args.out, rows, torch.device("cpu"), {"items": len(items), "split": "val", "cut_reach": CUT_REACH})
    print(f"({path})")


if __name__ == "__main__":
    main()
