"""Which fine-tune recipe closes a shop's gap? The catalogue loop's benchmark (benchmarks.loop) judges on test
items; this chooses the recipe on validation items only. A shop (the held-out `opaque` renderer, its clean,
everyday and hard levels in turn; or with --renderer studio the benchmark's second shop, benchmarks/studio.py)
draws the same 300 corrected validation items as the benchmark (70 % train the
model, as in the fine-tune) and 600 *other* validation items, the check set, with another seed. Each recipe
starts from the bundled model; it is scored on the check pictures, the same items as 28x28, and the validation
items that neither set uses (what it forgets), and on the 210 pictures it trained on (how well it fits them).

    python -m lab.loop_recipe [--recipes 8:3e-4:3,24:3e-4:3,...] [--renderer opaque] [--out loop-recipe-val]

A recipe is EPOCHS:LR:DATA_PER_PHOTO[:own][:frozen][:plain][:wise][:PART], where `own` replays the model's own training
recipe in the data-set part (its recorded augmentation, prints included, and its share of rendered photos from
its photo data), `frozen` keeps the batch-norm statistics the model was trained with, `plain` trains on the
pictures as they are (no augmentation), and `wise` averages the fine-tuned weights with the model's own (WiSE-FT,
Wortsman et al. 2022): one row per share of the fine-tuned weights in --wise-shares (default 0.5, the
fine-tune's). PART trains only a part of the model, the rest frozen (surgical fine-tuning, Lee et al. 2023: a
shift in the input is best met by the first layers): `stem` (the first convolution and its batch norm), `stage1`
(the stem and the first stage of blocks), `head` (the last linear layer), `norms` (the batch norms' scales and
shifts). Results go to lab/results/<out>-cpu.json.
"""

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.loop import shop_pictures
from fmnist import CLASS_NAMES
from fmnist.checkpoints import store
from fmnist.data import Split, load_splits, stratified_split
from fmnist.photo.cache import load_photo_data
from fmnist.training.augment import AugmentConfig
from fmnist.training.config import TrainConfig
from fmnist.training.finetune import HELD_OUT, accuracy, averaged, tune
from lab._common import ROOT, record

RECIPES = "8:3e-4:3:own:frozen,16:1e-4:3:own:frozen,24:3e-4:1:own:frozen,8:3e-4:3:frozen"
PARTS = {  # the parameters each PART trains, by name (fmnist.models' resnet)
    "stem": lambda name: name.startswith(("features.0.", "features.1.")),
    "stage1": lambda name: name.startswith(tuple(f"features.{i}." for i in range(5))),
    "head": lambda name: name.startswith("head."),
    "norms": lambda name: ".bn" in name or name.startswith("features.1.") or "shortcut.1." in name,
}


def shop(splits, seed: int, n_check: int, renderer: str = "opaque"):
    """The shop on validation items -> (the corrected pictures the model trains on, as a Split; the check items'
    indices into the validation split; their pictures as the pipeline's 28x28s; the indices of the unused ones)."""
    v_images, v_labels = splits.val.images.numpy(), splits.val.labels.numpy()
    corrected = stratified_split(v_labels, 300, seed + 11)[1]
    rest = np.setdiff1d(np.arange(len(v_labels)), corrected)
    check = rest[stratified_split(v_labels[rest], n_check, seed + 21)[1]]
    unused = np.setdiff1d(rest, check)
    name = "" if renderer == "opaque" else f"-{renderer}"
    cache = Path(tempfile.gettempdir()) / f"fmnist-loop-recipe{name}-{seed}-{n_check}.npz"
    if cache.is_file():  # the shop's pictures as the pipeline turns them into 28x28s, from an earlier run
        with np.load(cache) as z:
            shop_px, check_px = z["shop"], z["check"]
    else:
        work = Path(tempfile.mkdtemp(prefix="fmnist-loop-recipe-"))
        shop_px = shop_pictures(renderer, v_images[corrected], v_labels[corrected], 7, work / "shop", "c")
        check_px = shop_pictures(renderer, v_images[check], v_labels[check], 9, work / "check", "k")
        np.savez(cache, shop=shop_px, check=check_px)
    labels = v_labels[corrected]
    train_idx = stratified_split(labels, max(len(CLASS_NAMES), round(HELD_OUT * len(labels))), seed)[0]
    mine = Split(torch.from_numpy(shop_px[train_idx]), torch.from_numpy(labels[train_idx]))
    return mine, check, check_px, unused


def scorer(splits, mine: Split, check, check_px: np.ndarray, unused):
    """score(model, name, seconds) -> a result row: the check pictures, the same items as 28x28, their gap, the
    unused validation items (what the model forgets) and the pictures it trained on; printed as it comes."""
    y_check = torch.from_numpy(splits.val.labels.numpy()[check])
    forget = (splits.val.images[unused], splits.val.labels[unused])

    def score(model, name, seconds=0.0):
        model.eval()
        photo, items = (
            accuracy(model, torch.from_numpy(check_px), y_check),
            accuracy(model, splits.val.images[check], y_check),
        )
        row = {
            "recipe": name,
            "check_photos": photo,
            "check_28x28": items,
            "gap": items - photo,
            "unused_val": accuracy(model, *forget),
            "own_pictures": accuracy(model, mine.images, mine.labels),
            "train_seconds": seconds,
        }
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}, flush=True)
        return row

    return score


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", default=RECIPES)
    p.add_argument("--check", type=int, default=600)
    p.add_argument("--model", default="resnet")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="loop-recipe-val")
    p.add_argument("--renderer", default="opaque", help="the shop: opaque, or studio (benchmarks/studio.py)")
    p.add_argument("--wise-shares", default="0.5", help="comma-separated shares of the fine-tuned weights")
    args = p.parse_args()
    splits = load_splits(allow_download=False)
    mine, check, check_px, unused = shop(splits, args.seed, args.check, args.renderer)
    score = scorer(splits, mine, check, check_px, unused)

    bundled, _ = store.load_folder(ROOT / "checkpoints" / args.model)
    rows = [score(bundled, "bundled")]
    cfg = TrainConfig(seed=args.seed)
    for recipe in args.recipes.split(","):
        epochs, lr, per_photo, *flags = recipe.split(":")
        own = "own" in flags
        torch.manual_seed(args.seed)
        model, config = store.load_folder(ROOT / "checkpoints" / args.model)
        tc = config["train_config"]
        if own:
            aug, mix = AugmentConfig(**tc["augment"]), load_photo_data(ROOT / tc["photo_data"]).train
        else:
            aug, mix = dataclasses.replace(cfg, models=[args.model]).augment(args.model), None
        if "plain" in flags:
            aug = AugmentConfig(shift_px=0, hflip=False)
        part = next((PARTS[f] for f in flags if f in PARTS), None)
        for name, param in model.named_parameters():
            param.requires_grad_(part is None or part(name))
        start = time.perf_counter()
        share = tc["photo_share"] if own else 0
        frozen = "frozen" in flags
        tune(model, mine, splits, aug, int(epochs), float(lr), int(per_photo), cfg, mix, share, freeze_norms=frozen)
        seconds = time.perf_counter() - start
        if "wise" not in flags:
            rows.append(score(model, recipe, seconds))
            continue
        own_state = store.load_folder(ROOT / "checkpoints" / args.model)[0].state_dict()
        tuned = {k: v.clone() for k, v in model.state_dict().items()}
        for w in args.wise_shares.split(","):
            model.load_state_dict(averaged(tuned, own_state, float(w)))
            rows.append(score(model, f"{recipe}{w}" if "," in args.wise_shares else recipe, seconds))
    meta = {
        "renderer": args.renderer,
        "corrected": 300,
        "trained_on": len(mine),
        "check": args.check,
        "unused_val": len(unused),
    }
    print("wrote", record(args.out, rows, torch.device("cpu"), meta))


if __name__ == "__main__":
    main()
