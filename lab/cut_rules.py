"""How often do the notice's picture rules fire on garments cut by the frame? A cut garment is still a garment:
the app gives it the `cut off` hint, and the notice only where the rules take it for a part of something else.

    python -m lab.cut_rules [--per-class 10] [--seed 1] [--out cut-rules-val]

The validation garments of lab.edge_cut (the same items and seeds), cut by a tenth to a half of the item
(fmnist.photo.render.cut): the share that each of `small, at the edge` (before and since it also caught a small
thing cut wider than it reaches in) and `mostly outside the picture` fires on, and any picture rule but `several
items`. Results go to lab/results/<out>-cpu.json.
"""

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from fmnist.notice import rules
from lab._common import record
from lab.edge_cut import cut_garments, validation_items


def _small_before(pre) -> bool:
    """`small, at the edge` as it was: under EDGE_FILL alone."""
    at_edge = max(pre.edge_reach) > rules.CUT_REACH and not pre.touches_all_sides
    return bool(pre.found_item and at_edge and pre.fill < rules.EDGE_FILL)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default="cut-rules-val")
    args = p.parse_args()
    images, items = validation_items(args.per_class, args.seed)
    rows = []
    with ProcessPoolExecutor(2) as pool:
        for share, pres in cut_garments(pool, images, items, args.seed):
            fired = [rules.picture_rules(pre) for pre in pres]
            rows.append(
                {
                    "cut": share,
                    "n": len(pres),
                    "small_at_the_edge_before": float(np.mean([_small_before(pre) for pre in pres])),
                    "small_at_the_edge": float(np.mean(["small, at the edge" in f for f in fired])),
                    "mostly_outside": float(np.mean(["mostly outside the picture" in f for f in fired])),
                    "any_picture_rule": float(np.mean([bool(set(f) - {"several items"}) for f in fired])),
                }
            )
            print(rows[-1], flush=True)
    print(f"({record(args.out, rows, torch.device('cpu'), {'per_class': args.per_class, 'seed': args.seed})})")


if __name__ == "__main__":
    main()
