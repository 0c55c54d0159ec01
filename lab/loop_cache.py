"""Does a memory of the corrected pictures close more of a shop's gap than the fine-tune alone? A cache model
(Tip-Adapter, Zhang et al. 2022) adds to each answer's logits alpha x sum over the corrected pictures of
exp(-beta (1 - cosine of the two pictures' penultimate features)) x that picture's class: a picture that looks
like a corrected one leans towards its class; one that looks like none is left as it is.

    python -m lab.loop_cache [--alphas 0.5,1,2,4,8] [--betas 2,5,10,20,50] [--out loop-cache-val]

The shop and its pictures are lab.loop_recipe's (the held-out `opaque` on validation items, 210 corrected
pictures to learn from, 600 check pictures). alpha and beta are chosen on the first half of the check pictures
and scored on the second half, with the bundled model and with the fine-tune's recipe (16 epochs, 1e-4, WiSE
0.5); the unused validation items say what the cache costs the data set's own images.
"""

import argparse
import time

import numpy as np
import torch

from fmnist.checkpoints import store
from fmnist.data import load_splits
from fmnist.evaluation.metrics import predict_logits
from fmnist.photo.cache import load_photo_data
from fmnist.serving.gallery import embed
from fmnist.training.augment import AugmentConfig
from fmnist.training.config import TrainConfig
from fmnist.training.finetune import averaged, tune
from lab._common import ROOT, record
from lab.loop_recipe import shop


def cached_logits(logits: np.ndarray, features: np.ndarray, keys: np.ndarray, key_labels: np.ndarray, alpha, beta):
    """The model's logits plus the cache's vote (the features of unit length, as the gallery's)."""
    affinity = np.exp(-beta * (1.0 - features @ keys.T))
    return logits + alpha * affinity @ np.eye(10, dtype=np.float32)[key_labels]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--alphas", default="0.5,1,2,4,8")
    p.add_argument("--betas", default="2,5,10,20,50")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="loop-cache-val")
    args = p.parse_args()
    splits = load_splits(allow_download=False)
    mine, check, check_px, unused = shop(splits, args.seed, 600)
    y_val = splits.val.labels.numpy()
    halves = (np.arange(600) % 2 == 0, np.arange(600) % 2 == 1)  # check is stratified; alternate its order
    bundled, config = store.load_folder(ROOT / "checkpoints" / "resnet")
    tc = config["train_config"]
    torch.manual_seed(args.seed)
    tuned_model, _ = store.load_folder(ROOT / "checkpoints" / "resnet")
    start = time.perf_counter()
    cfg = TrainConfig(seed=args.seed)
    mix = load_photo_data(ROOT / tc["photo_data"]).train
    tune(tuned_model, mine, splits, AugmentConfig(**tc["augment"]), 16, 1e-4, 3, cfg, mix, tc["photo_share"], True)
    tuned_model.load_state_dict(averaged(tuned_model.state_dict(), bundled.state_dict(), 0.5))
    print(f"fine-tuned in {time.perf_counter() - start:.0f} s", flush=True)
    rows = []
    for name, model in (("bundled", bundled), ("fine-tuned", tuned_model)):
        model.eval()
        keys, key_labels = embed(model, mine.images.numpy()), mine.labels.numpy()
        sets = {
            "check_photos": (check_px, y_val[check]),
            "check_28x28": (splits.val.images.numpy()[check], y_val[check]),
            "unused_val": (splits.val.images.numpy()[unused], y_val[unused]),
        }
        seen = {
            k: (predict_logits(model, torch.from_numpy(x)).numpy(), embed(model, x), y) for k, (x, y) in sets.items()
        }
        grid = [(0.0, 0.0)] + [(float(a), float(b)) for a in args.alphas.split(",") for b in args.betas.split(",")]
        for alpha, beta in grid:
            right = {
                k: cached_logits(logits, feats, keys, key_labels, alpha, beta).argmax(1) == y
                for k, (logits, feats, y) in seen.items()
            }
            row = {"model": name, "alpha": alpha, "beta": beta}
            for h, half in enumerate(("choose", "score")):
                photos, items = right["check_photos"][halves[h]].mean(), right["check_28x28"][halves[h]].mean()
                row |= {f"{half}_photos": float(photos), f"{half}_gap": float(items - photos)}
            row["unused_val"] = float(right["unused_val"].mean())
            row = {k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}
            rows.append(row)
            print(row, flush=True)
    for name in ("bundled", "fine-tuned"):
        mine_rows = [r for r in rows if r["model"] == name]
        best = max(mine_rows, key=lambda r: (r["choose_photos"] - r["choose_gap"], -r["alpha"]))
        print("chosen on the first half:", best)
    print(
        "wrote", record(args.out, rows, torch.device("cpu"), {"corrected": len(mine), "check": 600}, row_per_line=True)
    )


if __name__ == "__main__":
    main()
