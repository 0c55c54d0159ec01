"""Does the fine-tune close more of a shop's gap when the data-set images it replays are given the shop's tones?

    python -m lab.loop_style [--renderer opaque] [--shares 0.5,1.0] [--out loop-style-val]

The shop of lab.loop_recipe (validation items photographed by the held-out `opaque` renderer, or the `studio`;
210 corrected pictures to learn from, 600 other check pictures). The fine-tune's recipe as it ships, and the same
with a share of the data-set images in each pass restyled: the grey levels of the item (its non-zero pixels)
matched, rank for rank, to those of a corrected picture of the same class drawn at random. The shop's 210
pictures teach what a shirt looks like there; restyled, the thousands of data-set images teach it with more
shapes. loop_tone moved the shop's pictures towards the data set in front of a frozen model and lost; this moves
the training images towards the shop instead. Results go to lab/results/<out>-cpu.json.
"""

import argparse
import time

import numpy as np
import torch

import fmnist.training.finetune as finetune
from fmnist.checkpoints import store
from fmnist.data import load_splits
from fmnist.photo.cache import load_photo_data
from fmnist.training.augment import AugmentConfig
from fmnist.training.config import TrainConfig
from lab._common import ROOT, record
from lab.loop_recipe import scorer, shop


def matched(image: np.ndarray, style: np.ndarray) -> np.ndarray:
    """image's non-zero pixels given style's non-zero grey levels at the same ranks (uint8, same shape)."""
    out = image.copy()
    fg, ref = image > 0, np.sort(style[style > 0])
    if fg.sum() < 2 or len(ref) < 2:
        return out
    order = np.argsort(image[fg], kind="stable")
    ranks = np.empty(len(order))
    ranks[order] = (np.arange(len(order)) + 0.5) / len(order)
    out[fg] = np.interp(ranks, (np.arange(len(ref)) + 0.5) / len(ref), ref).round().astype(np.uint8)
    return out


def restyler(mine, share: float, seed: int):
    """A stand-in for fmnist.training.loader.mixed_in that restyles a share of what it returns by mine's pictures."""
    original = finetune.mixed_in
    rng = np.random.default_rng(seed)
    shop_px, shop_y = mine.images.numpy(), mine.labels.numpy()
    by_class = {c: shop_px[shop_y == c] for c in np.unique(shop_y)}

    def mixed_in(images, labels, mix, mix_share, gen):
        images, labels = original(images, labels, mix, mix_share, gen)
        px, ys = images.numpy().copy(), labels.numpy()
        for i in np.flatnonzero(rng.random(len(ys)) < share):
            pool = by_class.get(int(ys[i]))
            if pool is not None and len(pool):
                px[i] = matched(px[i], pool[rng.integers(len(pool))])
        return torch.from_numpy(px), labels

    return mixed_in


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", type=int, default=600)
    p.add_argument("--model", default="resnet")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--renderer", default="opaque")
    p.add_argument("--shares", default="0.5,1.0", help="shares of the replayed data-set images restyled")
    p.add_argument("--out", default="loop-style-val")
    args = p.parse_args()
    splits = load_splits(allow_download=False)
    mine, check, check_px, unused = shop(splits, args.seed, args.check, args.renderer)
    score = scorer(splits, mine, check, check_px, unused)
    original = finetune.mixed_in
    bundled, config = store.load_folder(ROOT / "checkpoints" / args.model)
    rows = [score(bundled, "bundled")]
    own_state = bundled.state_dict()
    tc = config["train_config"]  # the model's own recipe, which the fine-tune replays
    aug, mix = AugmentConfig(**tc["augment"]), load_photo_data(ROOT / tc["photo_data"]).train
    cfg = TrainConfig(seed=args.seed)
    for share in [0.0] + [float(s) for s in args.shares.split(",")]:
        torch.manual_seed(args.seed)
        model, _ = store.load_folder(ROOT / "checkpoints" / args.model)
        finetune.mixed_in = restyler(mine, share, args.seed) if share else original
        start = time.perf_counter()
        finetune.tune(
            model,
            mine,
            splits,
            aug,
            finetune.EPOCHS,
            finetune.LR,
            finetune.DATA_PER_PHOTO,
            cfg,
            mix,
            tc["photo_share"],
            freeze_norms=True,
        )
        seconds = time.perf_counter() - start
        finetune.mixed_in = original
        model.load_state_dict(finetune.averaged(model.state_dict(), own_state, finetune.WISE))
        rows.append(score(model, f"shipped, restyled {share:g}", seconds))
    meta = {"renderer": args.renderer, "trained_on": len(mine), "check": args.check, "unused_val": len(unused)}
    print("wrote", record(args.out, rows, torch.device("cpu"), meta))


if __name__ == "__main__":
    main()
