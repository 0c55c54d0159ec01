"""The not-a-garment notice's rules, chosen on validation only. Statistics from training images and rendered
training photos; the outlier head learns those against pictures of things (fmnist.photo.outliers, seeds 3-20).
Each rule's limit lets through at least ITEM_PASS_RATE of the validation items (through the photo pipeline) and
the given share of the photo data's rendered validation photos (held-out renderers left out); "-" means the
limit comes from the items alone (at fmnist.notice.fitting's NOTICE_PASS_RATE for the Mahalanobis rule alone). For
each variant: the share of validation photos flagged, by renderer and for pale garments, of validation items,
and of two validation sets of non-garments (seeds 1 and 2; the photo benchmark's test sets are seeds 0 and 21-24),
the old kinds and the new (fmnist.photo.render.strays) apart, the picture rules included; and of pale garments,
the level the photo data's validation part holds fewest of: the photo benchmark's `pale` level of every renderer,
drawn on validation items (--pale-per-class a class and renderer, seed 6; the held-out renderer is reported,
never used to choose).

    python -m lab.notice_sweep [--model resnet] [--things data/outliers-v2.npz ...] [--hidden 32 ...]
                                      [--pale-per-class 30] [--out notice-sweep-val]

--things names the outlier files the head learns from; each argument is one set to compare, and files joined
with "+" are learnt together.
--hidden gives the outlier head's hidden units to try (the shipped number: fmnist.notice.detector.OUTLIER_HEAD_HIDDEN).
Until commit dea1aae the head was a logistic regression and --head-c swept its C; the recorded results of before
(notice-sweep-val*, notice-sweep-v2-val) come from that head.
"""

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from benchmarks.photos import render_job
from fmnist.checkpoints import store
from fmnist.data import load_splits, stratified_split
from fmnist.notice import detector
from fmnist.notice.detector import OUTLIER_HEAD_HIDDEN
from fmnist.notice.fitting import ITEM_PASS_RATE, NOTICE_PASS_RATE, fit_statistics, item_limit, val_through_pipeline
from fmnist.notice.rules import picture_rules
from fmnist.photo import outliers, preprocess
from fmnist.photo.cache import DEFAULT_PATH, load_photo_data
from fmnist.photo.render import RENDERERS, non_garments
from fmnist.photo.render.strays import strays
from lab._common import record

# (Mahalanobis photo pass rate, outlier-head photo pass rate); None: the Mahalanobis limit from the items alone,
# the outlier head not used
VARIANTS = (
    (None, None),
    (0.95, None),
    (0.97, None),
    (None, 0.95),
    (None, 0.97),
    (0.99, 0.97),
    (0.995, 0.97),
    (0.99, 0.975),
    (0.995, 0.975),
    (0.995, 0.9775),
    (0.995, 0.98),
    (0.995, 0.985),
    (0.998, 0.98),
    (0.998, 0.985),
    (0.995, 0.99),
)
VAL_SEEDS = (1, 2)
DIGITS_PER_STYLE = 40
PALE_SEED = 6  # the photo benchmark draws its test pictures with seed 0, its validation runs with 1


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet")
    p.add_argument("--things", nargs="+", default=["data/outliers-v2.npz"])
    p.add_argument(
        "--hidden",
        nargs="+",
        type=int,
        default=[OUTLIER_HEAD_HIDDEN],
        help="the outlier head's hidden units to try (default: the shipped %(default)s)",
    )
    p.add_argument(
        "--pale-per-class",
        type=int,
        default=30,
        help="validation items a class drawn at every renderer's pale level (0: none)",
    )
    p.add_argument("--out", default="notice-sweep-val")
    args = p.parse_args()
    model, splits, photo, seen, flagged, found, used = validation(args.model)
    val = photo.val
    feats = {
        "items": detector.penultimate_features(model, seen),
        "photos": detector.penultimate_features(model, torch.from_numpy(val["images"].astype(np.uint8))),
    }
    by_rules = {}
    for seed in VAL_SEEDS:
        by_rules[seed], feats[seed] = _seen(model, [preprocess(picture) for _, picture in non_garments(seed=seed)])
        by_rules[f"new{seed}"], feats[f"new{seed}"] = _seen(model, [preprocess(picture) for _, picture in strays(seed)])
        by_rules[f"digits{seed}"], feats[f"digits{seed}"] = _seen(model, [preprocess(p) for p in _digits(seed)])
    if args.pale_per_class:
        items = stratified_split(splits.val.labels.numpy(), 10 * args.pale_per_class, PALE_SEED)[1]
        with ProcessPoolExecutor(2) as pool:
            for r in RENDERERS:
                jobs = [(r, "pale", splits.val.images[i].numpy(), PALE_SEED, int(i)) for i in items]
                pres = [pre for pre, _ in pool.map(render_job, jobs, chunksize=4)]
                by_rules[f"pale_{r}"], feats[f"pale_{r}"] = _seen(model, pres)
    rows = []
    for things_set in args.things:
        things = np.concatenate([outliers.load(path)[0] for path in things_set.split("+")])
        for hidden in args.hidden:
            detector.OUTLIER_HEAD_HIDDEN = hidden  # read by fit_outlier_head when it is called
            stats, _ = fit_statistics(model, splits, 10, photo, things)
            scores = {
                rule: {k: fn(f, stats).numpy() for k, f in feats.items()}
                for rule, fn in (("mahalanobis", detector.mahalanobis_scores), ("outlier", detector.outlier_scores))
            }
            for row in sweep(scores, feats, flagged, val, found, used, by_rules, hidden):
                rows.append({"things": things_set, "n_things": len(things), **row})
    path = record(
        args.out,
        rows,
        torch.device("cpu"),
        {
            "model": args.model,
            "non_garments": {s: len(by_rules[s]) for s in VAL_SEEDS},
            "new_non_garments": {s: len(by_rules[f"new{s}"]) for s in VAL_SEEDS},
            "pale_per_renderer": 10 * args.pale_per_class,
            "pale_seed": PALE_SEED,
            "held_out": photo.meta["held_out"],
            "digits": {s: len(by_rules[f"digits{s}"]) for s in VAL_SEEDS},
            "things_sets": args.things,
        },
        row_per_line=True,
    )
    print(f"({path})")


def validation(model_name: str):
    """What the notice's sweeps judge on: the bundled model, the splits, the photo data, the validation items
    through the pipeline and whether the picture rules flag each, which rendered validation photos have an item,
    and which of those come from the renderers the photo data trained on (its held-out ones left out)."""
    torch.set_grad_enabled(False)
    model, _ = store.load_folder(f"checkpoints/{model_name}")
    splits = load_splits(allow_download=False)
    photo = load_photo_data(DEFAULT_PATH)
    seen, flagged = val_through_pipeline(splits)
    found = photo.val["images"].reshape(len(photo.val["images"]), -1).max(1) > 0
    used = found & ~np.isin(photo.val["renderer"], photo.meta["held_out"])
    return model, splits, photo, seen, flagged, found, used


def _digits(seed: int, n: int = DIGITS_PER_STYLE) -> list:
    """Digits of the probe pool drawn both ways the photo benchmark draws them (enlarged and sharp, and blurred on
    paper), n each: a larger validation set of the kind the notice misses most."""
    from fmnist.photo.render.non_garments import _digit
    from fmnist.photo.render.strays import blurred_digit

    return [
        draw(np.random.default_rng([seed, 7919, k, i]))
        for k, draw in enumerate((_digit, blurred_digit))
        for i in range(n)
    ]


def _seen(model, pres) -> tuple[np.ndarray, torch.Tensor]:
    """For preprocessed pictures: whether the picture rules flag each, and the model's penultimate features."""
    pixels = torch.from_numpy(np.stack([pre.pixels for pre in pres]))
    return np.array([bool(picture_rules(pre)) for pre in pres]), detector.penultimate_features(model, pixels)


def sweep(scores, feats, flagged, val, found, used, by_rules, hidden) -> list[dict]:
    """One row per VARIANTS entry: the limits it sets and what they flag."""
    rows = []
    for rates in VARIANTS:
        flags = {k: np.zeros(len(f), bool) for k, f in feats.items()}
        limits = {}
        # without the outlier head, the Mahalanobis rule alone keeps its items pass rate of NOTICE_PASS_RATE
        item_rate = NOTICE_PASS_RATE if rates[1] is None else ITEM_PASS_RATE
        for (rule, s), rate in zip(scores.items(), rates):
            if rule == "outlier" and rate is None:
                continue
            limits[rule] = item_limit(s["items"], flagged, item_rate)
            if rate is not None:
                limits[rule] = max(limits[rule], float(np.quantile(s["photos"][used], rate)))
            for k in flags:
                flags[k] |= s[k] > limits[rule]
        row = {
            "hidden": hidden,
            "mahalanobis_photo_pass": rates[0],
            "outlier_photo_pass": rates[1],
            "limits": limits,
            "items_flagged": 100 * float((flags["items"] | flagged).mean()),
            "photos_flagged_pale": 100 * float(flags["photos"][found & (val["level"] == "pale")].mean()),
        }
        for r in sorted(set(val["renderer"].tolist())):
            row[f"photos_flagged_{r}"] = 100 * float(flags["photos"][found & (val["renderer"] == r)].mean())
        for seed in VAL_SEEDS:
            row[f"non_garments_flagged_seed{seed}"] = 100 * float((flags[seed] | by_rules[seed]).mean())
            new = flags[f"new{seed}"] | by_rules[f"new{seed}"]
            row[f"new_non_garments_flagged_seed{seed}"] = 100 * float(new.mean())
            row[f"digits_flagged_seed{seed}"] = 100 * float((flags[f"digits{seed}"] | by_rules[f"digits{seed}"]).mean())
        for key in (k for k in flags if str(k).startswith("pale_")):
            row[f"{key}_flagged"] = 100 * float((flags[key] | by_rules[key]).mean())
        rows.append(row)
        print({k: (round(v, 1) if isinstance(v, float) else v) for k, v in row.items() if k != "limits"}, flush=True)
    return rows


if __name__ == "__main__":
    main()
