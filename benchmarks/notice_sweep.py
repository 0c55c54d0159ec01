"""The not-a-garment notice's trade-off, on validation only: the Mahalanobis statistics from data-set images alone
("data set") or with the rendered training photos too ("+ photos"); the limit set so that 96 % of the validation
items pass, and at least at the pooled quantile q of the non-held-out rendered validation photos (q is
fmnist.detector's PHOTO_PASS_RATE). For each: the share of the photo data's validation photos flagged, by renderer
and for pale garments, and of a validation set of non-garments (seed 1; the photo benchmark's test set is seed 0),
the picture rules included.

    python -m benchmarks.notice_sweep [--model resnet]
"""

import argparse

import numpy as np
import torch

from benchmarks._common import record
from fmnist import checkpoint, ood
from fmnist.data import load_splits
from fmnist.detector import NOTICE_PASS_RATE, val_through_pipeline
from fmnist.photo import preprocess
from fmnist.photo.cache import DEFAULT_PATH, load_photo_data
from fmnist.photo.render import non_garments
from fmnist.predict import picture_rules

QUANTILES = (None, 0.9, 0.93, 0.95, 0.97)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    model, _ = checkpoint.load_folder(f"checkpoints/{args.model}")
    splits = load_splits(allow_download=False)
    photo = load_photo_data(DEFAULT_PATH)
    step = max(1, len(splits.train) // ood.FIT_IMAGES)
    f_train, l_train = ood.penultimate_features(model, splits.train.images[::step]), splits.train.labels[::step]
    f_photo = ood.penultimate_features(model, photo.train.images)
    seen, flagged = val_through_pipeline(splits)
    f_items = ood.penultimate_features(model, seen)
    val = photo.val
    found = val["images"].reshape(len(val["images"]), -1).max(1) > 0
    held_out = np.isin(val["renderer"], photo.meta["held_out"])
    f_photos = ood.penultimate_features(model, torch.from_numpy(val["images"].astype(np.uint8)))
    pictures = non_garments(seed=1)
    pres = [preprocess(picture) for _, picture in pictures]
    by_rules = np.array([bool(picture_rules(pre)) for pre in pres])
    f_other = ood.penultimate_features(model, torch.from_numpy(np.stack([pre.pixels for pre in pres])))
    rows = []
    fits = {"data set": (f_train, l_train),
            "+ photos": (torch.cat([f_train, f_photo]), torch.cat([l_train, photo.train.labels]))}
    for name, (feats, labels) in fits.items():
        stats = ood.as_stored(ood.fit_mahalanobis(feats, labels, 10))
        s_items = ood.mahalanobis_scores(f_items, stats).numpy()
        s_photos = ood.mahalanobis_scores(f_photos, stats).numpy()
        s_other = ood.mahalanobis_scores(f_other, stats).numpy()
        allowed = int((1 - NOTICE_PASS_RATE) * len(s_items)) - int(flagged.sum())
        item_limit = float(np.sort(s_items[~flagged])[::-1][allowed])
        for q in QUANTILES:
            limit = item_limit if q is None else max(item_limit, float(np.quantile(s_photos[found & ~held_out], q)))
            row = {"statistics": name, "photo_pass_rate": q, "limit": limit,
                   "photos_flagged_pale": 100 * float((s_photos[found & (val["level"] == "pale")] > limit).mean()),
                   "non_garments_flagged": 100 * float(((s_other > limit) | by_rules).mean())}
            for r in sorted(set(val["renderer"].tolist())):
                row[f"photos_flagged_{r}"] = 100 * float((s_photos[found & (val["renderer"] == r)] > limit).mean())
            rows.append(row)
            print(row, flush=True)
    path = record("notice-sweep-val", rows, torch.device("cpu"), {"model": args.model, "non_garments": len(pictures)})
    print(f"({path})")


if __name__ == "__main__":
    main()
