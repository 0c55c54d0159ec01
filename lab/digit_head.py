"""Do photographed handwritten digits teach the notice to flag digits, and how should the detector learn them?

The digits come from fmnist.photo.render.written: MNIST digits that no probe draws, photographed on paper or a
board (`python -m fmnist.photo.outliers --digits [--count N --out FILE]`). Three ways, each beside the shipped
Mahalanobis and outlier-head rules (their photo pass rates 0.995 and, unless named, 0.975), on the default model:

- joint: the digits join the other things in the one outlier head;
- kind-balanced: the same, each kind of thing weighing as much in the head as every other;
- a digit head: a second head, garments against the digits alone, with a limit of its own (its photo pass rate).

    python -m lab.digit_head [--digits data/digits-v1.npz FILE ...] [--third FILE ...] [--out digit-head-val]

--third adds, beside the shipped digit head (the first --digits file at 0.995), a third head of the same kind
that learns the garments against FILE's pictures (e.g. `python -m lab.fragments --only-fragments --out FILE`).

Measured on validation only: the validation items and the photo data's rendered validation photos (as
lab.notice_sweep), the non-garments of seeds 1 and 2 (old and new kinds, 296 pictures), and 160 more digits of the
probe pool drawn both ways the photo benchmark draws them (lab.notice_sweep's _digits). Results go to
lab/results/<out>-cpu.json, with the kinds each way lets through.

The recorded result ran at commit dea1aae, when every outlier head was a logistic regression (C = 3). The heads
are networks now (fmnist.notice.detector.fit_outlier_head, lab.pale_notice), and the heads fitted here without
weights follow them.
"""

import argparse
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from fmnist.notice import detector
from fmnist.notice.fitting import ITEM_PASS_RATE, MAHALANOBIS_PHOTO_PASS_RATE, item_limit
from fmnist.notice.rules import picture_rules
from fmnist.photo import outliers, preprocess
from fmnist.photo.cache import DEFAULT_PATH
from fmnist.photo.render import non_garments
from fmnist.photo.render.strays import strays
from lab._common import ROOT, record, weighted_linear_head
from lab.notice_sweep import VAL_SEEDS, _digits, validation


def _seen(kind_picture):
    kind, picture = kind_picture
    pre = preprocess(picture)
    return kind, pre.pixels, bool(picture_rules(pre))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--digits", nargs="+", default=[str(outliers.DIGITS_PATH.relative_to(ROOT))])
    p.add_argument("--third", nargs="*", default=[], help="things files for a third head beside the digit head")
    p.add_argument("--out", default="digit-head-val")
    args = p.parse_args()
    model, splits, photo, seen, flagged, found, used = validation("resnet")
    val = photo.val
    pale = found & (val["level"] == "pale")
    pictures = []
    for seed in VAL_SEEDS:
        pictures += [(kind.split(":")[0], pic) for kind, pic in non_garments(seed=seed) + strays(seed)]
        pictures += [("probe digit", pic) for pic in _digits(seed)]
    with ProcessPoolExecutor(2) as pool:
        done = list(pool.map(_seen, pictures, chunksize=4))
    kinds = np.array([k for k, _, _ in done])
    by_rules = np.array([f for _, _, f in done])
    probe = kinds == "probe digit"
    feats = {
        "items": detector.penultimate_features(model, seen),
        "photos": detector.penultimate_features(model, torch.from_numpy(val["images"].astype(np.uint8))),
        "pictures": detector.penultimate_features(model, torch.from_numpy(np.stack([px for _, px, _ in done]))),
    }
    with np.load(DEFAULT_PATH.parent / "outliers-v2.npz") as z:
        things, thing_kinds = z["pixels"], z["kinds"]

    def head(garment_feats, pixels, weights=None, name="oe"):
        """An outlier head on the shipped garments (fmnist.notice.fitting.fit_statistics) against pixels."""
        x_things = detector.penultimate_features(model, torch.from_numpy(pixels))
        if weights is None:
            return detector.as_stored(detector.fit_outlier_head(garment_feats, x_things, head=name))
        mean, scale, clf = weighted_linear_head(garment_feats, x_things, thing_weights=weights)
        return detector.as_stored(
            {
                f"{name}_mean": mean,
                f"{name}_scale": scale,
                f"{name}_weight": torch.from_numpy(clf.coef_[0]),
                f"{name}_bias": torch.tensor([clf.intercept_[0]], dtype=torch.float64),
            }
        )

    from fmnist.notice.fitting import fit_statistics

    stats, _ = fit_statistics(model, splits, 10, photo, None)
    step = max(1, len(splits.train) // detector.FIT_IMAGES)
    item_feats = detector.penultimate_features(model, splits.train.images[::step])
    photo_feats = detector.penultimate_features(model, photo.train.images)
    garments = torch.cat([item_feats[:: max(1, len(item_feats) // len(photo_feats))][: len(photo_feats)], photo_feats])
    rows = []

    def judge(way, digits_file, rules):
        """rules: (score function of features, photo pass rate) pairs; a picture is flagged when any fires."""
        fired = {k: np.zeros(len(f), bool) for k, f in feats.items()}
        for score, rate in rules:
            s = {k: score(f).numpy() for k, f in feats.items()}
            limit = max(item_limit(s["items"], flagged, ITEM_PASS_RATE), float(np.quantile(s["photos"][used], rate)))
            for k in fired:
                fired[k] |= s[k] > limit
        pics = fired["pictures"] | by_rules
        row = {
            "way": way,
            "digits": digits_file,
            "items_flagged": 100 * float((fired["items"] | flagged).mean()),
            "photos_flagged": 100 * float(fired["photos"][found].mean()),
            "pale_photos_flagged": 100 * float(fired["photos"][pale].mean()),
            "non_garments_flagged": 100 * float(pics[~probe].mean()),
            "probe_digits_flagged": 100 * float(pics[probe].mean()),
            "missed": dict(Counter(kinds[~pics & ~probe].tolist())),
        }
        rows.append(row)
        print({k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}, flush=True)

    maha = (lambda f: detector.mahalanobis_scores(f, stats), MAHALANOBIS_PHOTO_PASS_RATE)
    base = stats | head(garments, things)
    for rate in (0.97, 0.975, 0.98):
        judge(f"shipped, outlier head {rate}", None, [maha, (lambda f: detector.outlier_scores(f, base), rate)])
    for path in args.digits:
        digits = outliers.load(path)[0]
        joint = head(garments, np.concatenate([things, digits]))
        judge("joint", path, [maha, (lambda f, s=joint: detector.outlier_scores(f, s), 0.975)])
        every = np.r_[thing_kinds, ["digit"] * len(digits)]
        count = Counter(every.tolist())
        balanced = head(garments, np.concatenate([things, digits]), np.array([1 / count[k] for k in every]))
        judge("kind-balanced", path, [maha, (lambda f, s=balanced: detector.outlier_scores(f, s), 0.975)])
        own = head(garments, digits, name="digit")
        shipped = (lambda f: detector.outlier_scores(f, base), 0.975)
        for rate in (0.99, 0.995):
            judge(f"digit head {rate}", path, [maha, shipped, (lambda f, s=own: detector.digit_scores(f, s), rate)])
    digit_head = head(garments, outliers.load(args.digits[0])[0], name="digit")
    with_digits = [maha, shipped, (lambda f: detector.digit_scores(f, digit_head), 0.995)]
    for path in args.third:
        third = head(garments, outliers.load(path)[0], name="third")
        for rate in (0.99, 0.995):
            judge(
                f"digit head 0.995, third head {rate}",
                path,
                [*with_digits, (lambda f, s=third: detector.outlier_scores(f, s, "third"), rate)],
            )
    path = record(
        args.out,
        rows,
        torch.device("cpu"),
        {"non_garments": int((~probe).sum()), "probe_digits": int(probe.sum()), "things": len(things)},
        row_per_line=True,
    )
    print(f"({path})")


if __name__ == "__main__":
    main()
