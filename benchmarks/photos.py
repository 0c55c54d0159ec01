"""The photo benchmark: Fashion-MNIST test items rendered as phone-like pictures (benchmarks/photo_scenes.py)
at three levels, classified through the app's whole pipeline, beside the same items as 28x28 images;
and pictures that are not garments, with the share that gets a notice.

    python benchmarks/photos.py [--per-class 30] [--seed 0] [--checkpoints checkpoints]
    python benchmarks/photos.py --split val --seed 1 --per-class 50 --levels everyday,hard --checkpoints runs/x

The second form renders validation items instead, for choosing training settings without looking at the
test set (results in photos-val-cpu.json; no notice shares).

Per model and level it reports the pipeline accuracy, the raw accuracy on the same items, their paired gap
with its standard error, how many items the photo lost and gained against the 28x28 image, and the share
of pictures with a notice; then the share of validation items (28x28, through the pipeline) and of
non-garment pictures that get a notice, by kind. Results go to benchmarks/results/photos-cpu.json.
"""

import argparse
import time
from collections import defaultdict

import numpy as np
import torch
from _common import ROOT, record
from photo_scenes import LEVELS, non_garments, render_photo
from PIL import Image
from tqdm.auto import tqdm

from fmnist import ood
from fmnist.data import load_raw, load_splits, stratified_split
from fmnist.predict import Predictor
from fmnist.preprocess import preprocess
from fmnist.training import format_table


def classify(predictor: Predictor, pre) -> dict:
    """{model: (predicted class index, notice rules)} for one preprocessed picture."""
    x = torch.tensor(pre.pixels, dtype=torch.float32).div(255.0)[None, None]
    out = {}
    with torch.inference_mode():
        for name, entry in predictor.models.items():
            feats = entry.model.penultimate(x)
            pred = int(entry.model.classify_features(feats).argmax(1))
            score = float(ood.mahalanobis_scores(feats.double(), entry.detector)[0]) if entry.detector else None
            out[name] = (pred, predictor.notice_rules(entry, pre, score))
    return out


# the accuracy columns of the table; the test run adds lost / gained and the notice shares
ACCURACY_COLUMNS = [("model", "model", ""), ("level", "level", ""), ("raw_acc", "raw 28x28 acc", ".3f"),
                    ("photo_acc", "photo acc", ".3f"), ("gap", "gap", "+.3f"), ("gap_se", "± se", ".3f")]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=30, help="test items per class and level")
    p.add_argument("--val-items", type=int, default=1000, help="validation items checked for notices")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    p.add_argument("--split", choices=("test", "val"), default="test",
                   help="render test items (the benchmark) or validation items (for choosing settings)")
    p.add_argument("--levels", default=",".join(LEVELS),
                   help="photo levels to render (default: all); with none, only the notice shares of 28x28 items, "
                        "validation items and non-garments, recorded as photos-flags-cpu.json")
    args = p.parse_args()
    levels = tuple(lv for lv in args.levels.split(",") if lv)
    torch.set_grad_enabled(False)
    predictor = Predictor.from_source(args.checkpoints)
    names = list(predictor.models)
    if args.split == "test":
        raw = load_raw(allow_download=False)
        images, labels = raw.test_images, raw.test_labels
    else:
        val = load_splits(allow_download=False).val
        images, labels = val.images.numpy(), val.labels.numpy()
    rng = np.random.default_rng(args.seed)
    n = 10 * args.per_class
    items = stratified_split(labels, n, args.seed)[1]  # the same items at every level

    rows, flags = [], defaultdict(list)
    correct = {(m, lvl): [] for m in names for lvl in ("raw",) + levels}
    flagged = {(m, lvl): [] for m in names for lvl in ("raw",) + levels}
    seconds = defaultdict(list)
    for level in ("raw",) + levels:
        for i in tqdm(items, desc=level):
            label = int(labels[i])
            picture = Image.fromarray(images[i]) if level == "raw" else render_photo(images[i], level, rng)[0]
            t0 = time.perf_counter()
            pre = preprocess(picture)
            seconds[level].append(time.perf_counter() - t0)
            for m, (pred, rules) in classify(predictor, pre).items():
                correct[m, level].append(pred == label)
                flagged[m, level].append(bool(rules))
    for m in names:
        for level in levels:
            r, ph = np.asarray(correct[m, "raw"]), np.asarray(correct[m, level])
            diff = r.astype(float) - ph  # paired: the same items as 28x28 images and as photos
            rows.append({"model": m, "level": level, "raw_acc": float(r.mean()), "photo_acc": float(ph.mean()),
                         "gap": float(diff.mean()), "gap_se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
                         "lost": int(np.sum(r & ~ph)), "gained": int(np.sum(~r & ph)),
                         "raw_flagged": float(np.mean(flagged[m, "raw"])),
                         "photo_flagged": float(np.mean(flagged[m, level]))})

    if args.split == "val":  # settings are chosen on accuracy alone; the notice shares belong to the test run
        path = record("photos-val", rows, torch.device("cpu"), {"items_per_level": int(n), "seed": args.seed})
        print(format_table(rows, ACCURACY_COLUMNS))
        print(f"({path})")
        return
    val = load_splits(allow_download=False).val
    val_idx = np.arange(min(args.val_items, len(val)))
    val_flagged = defaultdict(list)
    for i in tqdm(val_idx, desc="validation"):
        pre = preprocess(Image.fromarray(val.images[i].numpy()))
        for m, (_, rules) in classify(predictor, pre).items():
            val_flagged[m].append(bool(rules))

    ood_rows = []
    by_kind = defaultdict(lambda: defaultdict(list))
    for kind, picture in tqdm(non_garments(args.seed), desc="non-garments"):
        pre = preprocess(picture)
        for m, (_, rules) in classify(predictor, pre).items():
            by_kind[m][kind.split(":")[0]].append(bool(rules))
            flags[m].append(bool(rules))
    for m in names:
        ood_rows.append({"model": m, "non_garments_flagged": float(np.mean(flags[m])),
                         "test_items_flagged": float(np.mean(flagged[m, "raw"])),
                         "val_items_flagged": float(np.mean(val_flagged[m])),
                         **{f"flagged_{k}": float(np.mean(v)) for k, v in by_kind[m].items()}})

    timing = {lvl: {"mean_ms": 1000 * float(np.mean(s)), "p95_ms": 1000 * float(np.percentile(s, 95))}
              for lvl, s in seconds.items()}
    path = record("photos" if levels else "photos-flags", rows, torch.device("cpu"), {"non_garments": ood_rows, "preprocess_seconds": timing,
                                                        "items_per_level": int(n), "seed": args.seed})
    print(format_table(rows, ACCURACY_COLUMNS + [("lost", "lost", "d"), ("gained", "gained", "d"),
                                                 ("raw_flagged", "raw flagged", ".3f"),
                                                 ("photo_flagged", "photo flagged", ".3f")]))
    kinds = sorted({k for m in names for k in by_kind[m]})
    print()
    print(format_table(ood_rows, [("model", "model", ""), ("non_garments_flagged", "non-garments flagged", ".3f"),
                                  ("val_items_flagged", "val items flagged", ".3f"),
                                  ("test_items_flagged", "28x28 test items flagged", ".3f")]
                       + [(f"flagged_{k}", k, ".2f") for k in kinds]))
    print("\npreprocessing time per picture:", {k: f"{v['mean_ms']:.0f} ms mean, {v['p95_ms']:.0f} ms p95"
                                              for k, v in timing.items()})
    print(f"({path})")


if __name__ == "__main__":
    main()
