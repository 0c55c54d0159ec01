"""The not-a-garment detector of a trained model: a Mahalanobis rule on its penultimate features and, when it is
fitted with rendered photos and pictures of things, an outlier head beside it (and a digit head, with the
photographed digits); their limits set on validation as the app sees it (items and photos through the photo
pipeline, with the picture rules)."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import torch

from fmnist.checkpoints import store
from fmnist.data import Splits
from fmnist.notice import detector
from fmnist.photo import outliers
from fmnist.photo.cache import DEFAULT_PATH, load_photo_data
from fmnist.training.config import TrainConfig
from fmnist.training.environment import existing_checkpoints

log = logging.getLogger(__name__)

# The share of real validation items that get no notice. The issue asks for 95 %; 96 % leaves a margin so
# that unseen items (the test set) stay under 5 % notices too. (The rule of a detector fitted without photos.)
NOTICE_PASS_RATE = 0.96
# The figures below were measured with the detectors of their day (data/outliers-v2.npz, photo data v4).
# With rendered photos and pictures of things (fmnist.photo.outliers), two rules, each set on validation
# (benchmarks.notice_sweep: validation items, the photo data's validation photos, non-garments of seeds 1 and 2):
# - the outlier head's limit lets through 97.5 % of the rendered validation photos (held-out renderers left out);
# - the Mahalanobis limit, only for what is far from everything, lets through 99.5 % of them;
# each limit also lets through at least ITEM_PASS_RATE of the validation items. With the Mahalanobis rule alone no
# limit met both targets (0.97 of photos: 5-6 % of pale garments flagged but about 65 % of non-garments).
# The outlier head's rate was 0.98, the loosest that flagged 90 % of the old validation non-garments. Against the
# target of 97 %, old and new kinds alike (python -m lab.notice_sweep --out notice-sweep-v2-val), 0.98 flags
# 97.2 / 94.4 % of the old kinds and 82.5 / 82.5 % of the new at seeds 1 / 2; 0.975 flags 100 / 97.2 % and
# 87.5 / 87.5 %, for 1.1 -> 1.4 % of validation items and 4.1 -> 6.1 % of the photo data's pale validation photos
# (on the photo benchmark's pale level, drawn on validation items: scenes 3.0, tint 1.0, pattern 1.7 -> 2.0 %).
# 0.97 flags one more of the 80 new non-garments, and pale photos 7.7 %.
ITEM_PASS_RATE = 0.98
OUTLIER_PHOTO_PASS_RATE = 0.975
MAHALANOBIS_PHOTO_PASS_RATE = 0.995
# The digit head (data/digits-v1.npz), a rule of its own. Chosen on validation (python -m lab.digit_head, default
# model): beside the two rules above, at 0.995 it takes 160 validation digits of the probe pool from 77.5 to 93.8 %
# flagged and the 296 validation non-garments from 96.0 to 97.0 %, for validation items 1.35 -> 1.45 % and rendered
# validation photos 3.25 -> 3.38 % (pale ones 6.1 % as before); at 0.99, 95.6 and 97.0 % for 1.47 and 3.50 %.
# The digits learnt in the one outlier head with the other things: 89.4 and 95.3 %; each kind weighted alike there:
# 85.0 and 95.6 %.
DIGIT_PHOTO_PASS_RATE = 0.995


def val_through_pipeline(splits: Splits, cache: dict | None = None) -> tuple[torch.Tensor, np.ndarray]:
    """The validation items as the app sees them: each through the photo pipeline, (N, 28, 28) uint8, and
    whether the picture rules flag it. The same for every model of a run, so a run computes it once (cache)."""
    if cache is not None and "val_seen" in cache:
        return cache["val_seen"]
    from PIL import Image

    from fmnist.notice.rules import picture_rules
    from fmnist.photo import preprocess

    seen, flagged = [], []
    for img in splits.val.images.cpu().numpy():
        pre = preprocess(Image.fromarray(img))
        seen.append(torch.from_numpy(pre.pixels))
        flagged.append(bool(picture_rules(pre)))
    result = torch.stack(seen), np.asarray(flagged)
    if cache is not None:
        cache["val_seen"] = result
    return result


def fit_detector(
    model: torch.nn.Module,
    splits: Splits,
    folder: Path,
    n_classes: int,
    cache: dict | None = None,
    photo=None,
    things=None,
    digits=None,
) -> dict:
    """Fit the detector and set its limits; writes detector.safetensors, returns the config entry.

    Class means and the shared covariance come from training images and, with photo (a fmnist.photo.cache
    PhotoData), from the rendered training photos too, as the pipeline turned them into 28x28: what the model
    sees of a photographed garment is then part of "a garment". Without photo (or without things, the
    fmnist.photo.outliers pixels), the Mahalanobis limit is the score that NOTICE_PASS_RATE of the validation items
    (through the photo pipeline, with the picture rules) stay under. With both, an outlier head learns garments
    against things, and each rule's limit comes from validation: items and rendered validation photos of the
    renderers the photo data trained on (its held-out renderers are left out, so that their notice rates stay an
    honest estimate). With digits too (fmnist.photo.outliers.load(DIGITS_PATH)), a second head learns the garments
    against photographed digits, with a limit of its own set the same way."""
    stats, counts = fit_statistics(
        model,
        splits,
        n_classes,
        photo,
        things[0] if things is not None else None,
        digits_pixels=digits[0] if things is not None and digits is not None else None,
    )
    seen, flagged = val_through_pipeline(splits, cache)
    val_feats = detector.penultimate_features(model, seen)
    entry = {"val_flagged_by_picture_rules": float(flagged.mean())}
    if photo is None or things is None:
        scores = detector.mahalanobis_scores(val_feats, stats).numpy()
        limit = item_limit(scores, flagged, NOTICE_PASS_RATE)
        how = ("" if photo is None else f" and {len(photo.train):,} rendered training photos") + (
            f"; the limit is set so that {100 * NOTICE_PASS_RATE:.0f} % of the {len(scores):,} validation items "
            f"passed through the photo pipeline get no notice from this rule and the picture rules together"
        )
        entry |= {"pass_rate": NOTICE_PASS_RATE, "limit_from_val_items": limit}
    else:
        things_pixels, things_digest = things
        held_out = set(photo.meta.get("held_out", []))
        found = photo.val["images"].reshape(len(photo.val["images"]), -1).max(1) > 0
        keep = ~np.isin(photo.val["renderer"], list(held_out)) & found
        photo_val = detector.penultimate_features(model, torch.from_numpy(photo.val["images"][keep].astype(np.uint8)))
        limits, on_items = {}, flagged.copy()
        rules = [
            ("mahalanobis", detector.mahalanobis_scores, MAHALANOBIS_PHOTO_PASS_RATE),
            ("outlier", detector.outlier_scores, OUTLIER_PHOTO_PASS_RATE),
        ]
        if "digit_weight" in stats:
            rules.append(("digit", detector.digit_scores, DIGIT_PHOTO_PASS_RATE))
        for rule, score, rate in rules:
            on_val = score(val_feats, stats).numpy()
            limits[rule] = max(
                item_limit(on_val, flagged, ITEM_PASS_RATE), float(np.quantile(score(photo_val, stats).numpy(), rate))
            )
            on_items |= on_val > limits[rule]
        limit = limits["mahalanobis"]
        entry |= {
            "outlier": limits["outlier"],
            "pass_rate": float(1 - on_items.mean()),
            "item_pass_rate": ITEM_PASS_RATE,
            "photo_pass_rates": {rule: rate for rule, _, rate in rules},
            "val_photos": int(keep.sum()),
            "things": things_digest,
            "fit_things": int(len(things_pixels)),
        }
        how = (
            f" and {len(photo.train):,} rendered training photos; an outlier head (a network of one hidden layer "
            f"on the same features) learns {counts['head_garments']:,} of those items and photos against "
            f"{len(things_pixels):,} pictures of things that are not garments ({outliers.COMMAND}). A "
            f"picture gets the notice when any score is above its limit: the outlier head's lets "
            f"{100 * OUTLIER_PHOTO_PASS_RATE:.1f} % and the distance's {100 * MAHALANOBIS_PHOTO_PASS_RATE:.1f} % "
            f"of {int(keep.sum()):,} rendered validation photos through (held-out renderers left out: "
            f"{', '.join(sorted(held_out)) or 'none'}), and each at least {100 * ITEM_PASS_RATE:.0f} % of the "
            f"{len(val_feats):,} validation items passed through the photo pipeline; together with the picture "
            f"rules {100 * entry['pass_rate']:.1f} % of those items get no notice"
        )
        if "digit" in limits:
            entry |= {"digit": limits["digit"], "digits": digits[1], "fit_digits": int(len(digits[0]))}
            how += (
                f". A second head learns the same garments against {len(digits[0]):,} photographed handwritten "
                f"digits ({outliers.COMMAND} --digits); its limit lets {100 * DIGIT_PHOTO_PASS_RATE:.1f} % of the "
                f"rendered validation photos through"
            )
    if photo is not None:
        entry |= {"photo_data": photo.digest, "fit_photos": int(len(photo.train))}
    detector.save_detector(folder, stats)
    return entry | {
        "mahalanobis": limit,
        "how": f"squared Mahalanobis distance of the penultimate features to the nearest class mean (Lee "
        f"et al. 2018); class means and shared covariance from {counts['fit_images']:,} training images" + how,
    }


def fit_statistics(
    model: torch.nn.Module,
    splits: Splits,
    n_classes: int,
    photo=None,
    things_pixels: np.ndarray | None = None,
    digits_pixels: np.ndarray | None = None,
) -> tuple[dict, dict]:
    """The detector's stored statistics, and how many pictures each part learnt from.

    The Mahalanobis class means and shared covariance come from every len(train) // detector.FIT_IMAGES-th training
    image and, with photo, the rendered training photos. With photo and things_pixels (fmnist.photo.outliers),
    the outlier head learns as many of those training images as there are photos, and the photos, against the
    things; with digits_pixels too, the digit head learns the same garments against the digits."""
    step = max(1, len(splits.train) // detector.FIT_IMAGES)
    fit_images, labels = splits.train.images[::step], splits.train.labels[::step].cpu()
    feats = detector.penultimate_features(model, fit_images)
    counts = {"fit_images": len(fit_images)}
    if photo is None:
        return detector.as_stored(detector.fit_mahalanobis(feats, labels, n_classes)), counts
    photo_feats = detector.penultimate_features(model, photo.train.images)
    stats = detector.as_stored(
        detector.fit_mahalanobis(
            torch.cat([feats, photo_feats]), torch.cat([labels, photo.train.labels.cpu()]), n_classes
        )
    )
    if things_pixels is not None:
        items = feats[:: max(1, len(feats) // len(photo_feats))][: len(photo_feats)]
        garments = torch.cat([items, photo_feats])
        things = detector.penultimate_features(model, torch.from_numpy(things_pixels))
        stats |= detector.as_stored(detector.fit_outlier_head(garments, things))
        if digits_pixels is not None:
            digits = detector.penultimate_features(model, torch.from_numpy(digits_pixels))
            stats |= detector.as_stored(detector.fit_outlier_head(garments, digits, "digit"))
        counts["head_garments"] = len(garments)
    return stats, counts


def item_limit(scores: np.ndarray, flagged: np.ndarray, pass_rate: float) -> float:
    """The score under which pass_rate of the validation items stay, the picture rules' notices counted in."""
    allowed = int((1 - pass_rate) * len(scores)) - int(flagged.sum())
    rest = np.sort(scores[~flagged])[::-1]
    return float(rest[allowed]) if 0 <= allowed < len(rest) else float(rest[0])


def detector_things():
    """The pictures of things an outlier head learns from, and their digest (None when the file is not there)."""
    return outliers.load()


def detector_digits():
    """The photographed digits the digit head learns from, and their digest (None when the file is not there)."""
    return outliers.load(outliers.DIGITS_PATH)


def detector_photos(path: str | None):
    """The rendered photos a detector is fitted and set on: the run's --photo-data, else the repository's photo
    data when it is there (None without either). Read once per process: a run of several models fits several."""
    return _photos_at(Path(path) if path else DEFAULT_PATH)


@functools.lru_cache(maxsize=2)
def _photos_at(path: Path):
    return load_photo_data(path) if path.is_file() else None


def refit_detectors(cfg: TrainConfig) -> list[str]:
    """Fit the not-a-garment detector of existing checkpoints (cfg.models in cfg.out_dir) on their own
    weights, on the split they were trained with, and on the rendered photos of --photo-data (default: the
    repository's photo data, when it is there).
    Weights and metrics stay as they are; config.json gains the threshold, and detector.safetensors appears."""
    done = []
    photo, things, digits = detector_photos(cfg.photo_data), detector_things(), detector_digits()
    caches: dict = {}  # one pass of the validation items through the pipeline per split, not per model
    for name, folder, model, config, splits in existing_checkpoints(cfg, allow_limit=False):
        split = (config["seed"], config["train_config"]["val_size"], config["train_config"].get("limit"))
        config["notice_threshold"] = fit_detector(
            model,
            splits,
            folder,
            len(config["class_names"]),
            cache=caches.setdefault(split, {}),
            photo=photo,
            things=things,
            digits=digits,
        )
        config["notice_threshold"]["fitted_after_training"] = True
        store.atomic_write_json(folder / store.CONFIG_NAME, config)
        log.info("%s: detector fitted, threshold %.1f", name, config["notice_threshold"]["mahalanobis"])
        done.append(name)
    return done
