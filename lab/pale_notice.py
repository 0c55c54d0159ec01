"""Why do pale garments get the notice, and does another outlier head, or a stronger colour floor, stop it?

Garment photos of the `pale` level get the notice more often than any other (the photo benchmark's `opaque` pale
cell most of all). This renders validation items (--per-class a class, seed 1) at every renderer's pale level and
at scenes, tint and opaque's everyday level, through the app's pipeline, and reports per cell the default model's
accuracy, the share given a notice, which rule gave it and the classes of those pictures.

Then it refits the detector's two heads (fmnist.notice.fitting's garments against the things, and against the
digits) in other ways and sets their limits as fitting does (the shipped photo pass rates), each judged on the
validation items, the photo data's validation photos (its pale ones apart), the pictures rendered above, and the
non-garments of seeds 1 and 2 with 160 probe digits (as lab.notice_sweep):

- shipped: the logistic regressions (C = 3), refitted;
- pale photos weighted: the photo data's pale training photos count three times in both heads;
- a small network: one hidden layer of 32 ReLU units (sklearn's MLPClassifier, alpha 0.01), at three seeds.

    python -m lab.pale_notice [--per-class 20] [--colour-floor 0.3] [--out pale-notice-val]

--colour-floor sets fmnist.photo.intensity.COLOUR_FLOOR for the rendered pictures (the shipped 0.3 by default):
how much of a garment's colour shows where its grey is the backdrop's. Results go to lab/results/<out>-cpu.json.
"""

import argparse
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from benchmarks.photos import _preprocess_picture, render_job
from fmnist import CLASS_NAMES
from fmnist.data import stratified_split
from fmnist.notice import detector
from fmnist.notice.fitting import (
    DIGIT_PHOTO_PASS_RATE,
    ITEM_PASS_RATE,
    MAHALANOBIS_PHOTO_PASS_RATE,
    OUTLIER_PHOTO_PASS_RATE,
    fit_statistics,
    item_limit,
)
from fmnist.notice.rules import picture_rules
from fmnist.photo import intensity, outliers
from fmnist.photo.cache import DEFAULT_PATH
from fmnist.photo.render import non_garments
from fmnist.photo.render.strays import strays
from fmnist.serving.predict import Predictor
from fmnist.tag.core import classify_batch
from lab._common import record, weighted_linear_head
from lab.notice_sweep import VAL_SEEDS, _digits, validation

CELLS = [(r, "pale") for r in ("scenes", "tint", "opaque", "pattern")] + [
    (r, "everyday") for r in ("scenes", "tint", "opaque")
]
PALE_WEIGHT = 3.0


def _head(garments, things, weights, kind, seed=0):
    """A score function of features: garments (weighted) against things, "linear" or "mlp"."""
    from sklearn.neural_network import MLPClassifier

    if kind == "linear":
        mean, scale, clf = weighted_linear_head(garments, things, garment_weights=weights)
    else:
        z, y, mean, scale = detector.standardised(garments, things)
        clf = MLPClassifier((32,), alpha=1e-2, max_iter=300, random_state=seed).fit(z, y)

    def score(f):
        p = clf.predict_proba(((f.double() - mean) / scale).numpy())[:, 1].clip(1e-12, 1 - 1e-12)
        return torch.from_numpy(np.log(p / (1 - p)))

    return score


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=20)
    p.add_argument("--colour-floor", type=float, default=intensity.COLOUR_FLOOR)
    p.add_argument("--out", default="pale-notice-val")
    args = p.parse_args()
    intensity.COLOUR_FLOOR = args.colour_floor  # before the workers fork, so that they inherit it
    model, splits, photo, seen, flagged, found, used = validation("resnet")
    images, labels = splits.val.images.numpy(), splits.val.labels.numpy()
    items = stratified_split(labels, 10 * args.per_class, 1)[1]
    jobs = [(r, lv, images[i], 0, int(i)) for r, lv in CELLS for i in items]
    cell = np.array([f"{r} {lv}" for r, lv in CELLS for _ in items])
    truth = np.tile(labels[items], len(CELLS))
    pictures = []
    for seed in VAL_SEEDS:
        pictures += [(kind.split(":")[0], pic) for kind, pic in non_garments(seed=seed) + strays(seed)]
        pictures += [("probe digit", pic) for pic in _digits(seed)]
    with ProcessPoolExecutor(2) as pool:
        pres = [pre for pre, _ in pool.map(render_job, jobs, chunksize=4)]
        seen_pictures = pool.map(_preprocess_picture, [picture for _, picture in pictures], chunksize=4)
        done = [(kind, pre) for (kind, _), (pre, _) in zip(pictures, seen_pictures)]

    predictor = Predictor.from_source("checkpoints", only="resnet")
    answers = classify_batch(predictor, pres, "resnet")
    pictures_rows, rows = [], []
    for c in dict.fromkeys(cell):
        at = np.flatnonzero(cell == c)
        given = [i for i in at if answers[i][1]]
        pictures_rows.append(
            {
                "cell": c,
                "colour_floor": args.colour_floor,
                "accuracy": 100 * float(np.mean([np.argmax(answers[i][0]) == truth[i] for i in at])),
                "notices": 100 * len(given) / len(at),
                "rules": dict(Counter(r for i in given for r in answers[i][1])),
                "classes": dict(Counter(CLASS_NAMES[truth[i]] for i in given)),
            }
        )
        print(pictures_rows[-1], flush=True)

    kinds = np.array([k for k, _ in done])
    by_rules = np.array([bool(picture_rules(pre)) for _, pre in done])
    probe = kinds == "probe digit"
    pale_pictures = np.char.endswith(cell, "pale")
    rendered_rules = np.array([bool(picture_rules(pre)) for pre in pres])
    feats = {
        "items": detector.penultimate_features(model, seen),
        "photos": detector.penultimate_features(model, torch.from_numpy(photo.val["images"].astype(np.uint8))),
        "rendered": detector.penultimate_features(model, torch.from_numpy(np.stack([pre.pixels for pre in pres]))),
        "non-garments": detector.penultimate_features(
            model, torch.from_numpy(np.stack([pre.pixels for _, pre in done]))
        ),
    }
    stats, _ = fit_statistics(model, splits, 10, photo, None)
    step = max(1, len(splits.train) // detector.FIT_IMAGES)
    item_feats = detector.penultimate_features(model, splits.train.images[::step])
    photo_feats = detector.penultimate_features(model, photo.train.images)
    garments = torch.cat([item_feats[:: max(1, len(item_feats) // len(photo_feats))][: len(photo_feats)], photo_feats])
    with np.load(DEFAULT_PATH) as z:
        pale_train = z["train_level"] == "pale"
    x_things = detector.penultimate_features(model, torch.from_numpy(outliers.load()[0]))
    x_digits = detector.penultimate_features(model, torch.from_numpy(outliers.load(outliers.DIGITS_PATH)[0]))
    maha = (lambda f: detector.mahalanobis_scores(f, stats), MAHALANOBIS_PHOTO_PASS_RATE)
    photo_pale = found & (photo.val["level"] == "pale")

    def judge(way, weights, kind, seed=0):
        heads = [
            (_head(garments, x_things, weights, kind, seed), OUTLIER_PHOTO_PASS_RATE),
            (_head(garments, x_digits, weights, kind, seed), DIGIT_PHOTO_PASS_RATE),
        ]
        fired = {k: np.zeros(len(f), bool) for k, f in feats.items()}
        for score, rate in [maha, *heads]:
            s = {k: score(f).numpy() for k, f in feats.items()}
            limit = max(item_limit(s["items"], flagged, ITEM_PASS_RATE), float(np.quantile(s["photos"][used], rate)))
            for k in fired:
                fired[k] |= s[k] > limit
        rendered = fired["rendered"] | rendered_rules
        things = fired["non-garments"] | by_rules
        rows.append(
            {
                "way": way,
                "val_items": 100 * float((fired["items"] | flagged).mean()),
                "val_photos": 100 * float(fired["photos"][found].mean()),
                "val_photos_pale": 100 * float(fired["photos"][photo_pale].mean()),
                "rendered_pale": 100 * float(rendered[pale_pictures].mean()),
                "rendered_pale_bags": 100 * float(rendered[pale_pictures & (truth == 8)].mean()),
                "rendered_everyday": 100 * float(rendered[~pale_pictures].mean()),
                "non_garments": 100 * float(things[~probe].mean()),
                "probe_digits": 100 * float(things[probe].mean()),
                "missed": dict(Counter(kinds[~things & ~probe].tolist())),
            }
        )
        print(rows[-1], flush=True)

    plain = np.ones(len(garments))
    judge("shipped (logistic regressions, C = 3)", plain, "linear")
    weighted = np.r_[np.ones(len(garments) - len(photo_feats)), np.where(pale_train, PALE_WEIGHT, 1.0)]
    judge(f"pale training photos weighted {PALE_WEIGHT:g}x", weighted, "linear")
    for seed in (0, 1, 2):
        judge(f"a network of 32 hidden units, seed {seed}", plain, "mlp", seed)
    path = record(
        args.out,
        rows,
        torch.device("cpu"),
        {
            "per_class": args.per_class,
            "non_garments": int((~probe).sum()),
            "probe_digits": int(probe.sum()),
            "pictures": pictures_rows,
        },
        row_per_line=True,
    )
    print(f"({path})")


if __name__ == "__main__":
    main()
