"""What the whole picture says, beside the region the pipeline found: the picture-level measures of every
validation picture (garment photos of every renderer and level, and non-garments of the old and the new kinds),
with the default model's notice as it is, to choose the picture rule's limits on validation only.

    python -m lab.picture_signals [--per-cell 40] [--seeds 1 2] [--checkpoints checkpoints] [--out picture-signals-val]

Garments: validation items drawn by every renderer at every level (`opaque` is measured, never used to choose),
and the same items photographed with a tenth or a fifth cut off by the frame (fmnist.photo.render.cut).
Non-garments: fmnist.photo.render.non_garments and fmnist.photo.render.strays at the validation seeds (1 and 2;
the photo benchmark draws seed 0, the detector learns from seeds 3-20). Each row: the kind, the measures the
pipeline records (fill, clutter, unexplained, items, touches all sides, the reach along each side, aspect), the
detector's two scores against their limits, and the notice's rules as they fire today (none: no notice). Results
go to lab/results/<out>-cpu.json, the row's keys once under "columns".
"""

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from benchmarks.photos import _slim
from fmnist.data import load_splits, stratified_split
from fmnist.notice.rules import cut_ratio
from fmnist.photo import preprocess
from fmnist.photo.render import RENDERERS, non_garments, render_item
from fmnist.photo.render.cut import cut_photo
from fmnist.photo.render.strays import strays
from fmnist.serving.predict import Predictor, detector_scores
from fmnist.tag.core import classify_batch
from lab._common import ROOT, record

MEASURES = ("fill", "clutter", "unexplained", "items", "touches_all_sides", "aspect", "textured")


def _garment(job):
    renderer, level, item, seed, index = job
    return _measured(render_item(renderer, level, item, seed, index))


def _cut(job):
    item, share, seed = job
    return _measured(cut_photo(item, share, seed))


def _measured(picture: Image.Image):
    return _slim(preprocess(picture))


def validation_pictures(per_cell: int, seeds) -> tuple[list[tuple[str, str]], np.ndarray, list]:
    """The validation pictures, preprocessed (their view and mask dropped): ((group, kind) of each, the class of
    each garment and -1 for a non-garment, the preprocessed pictures). per_cell validation items for every renderer
    and level and for each cut, and the non-garments of the old and new kinds at each of seeds."""
    val = load_splits(allow_download=False).val
    images, labels = val.images.numpy(), val.labels.numpy()
    items = stratified_split(labels, per_cell, 1)[1]
    jobs, kinds, classes = [], [], []
    for renderer, (_, levels) in RENDERERS.items():
        for level in levels:
            for n, i in enumerate(items):
                jobs.append((renderer, level, images[i], 1 * 100003 + int(i), n))
                kinds.append(("garment", f"{renderer}/{level}"))
                classes.append(labels[i])
    cuts = [(images[i], share, 7 * 100003 + int(i)) for i in items for share in (0.1, 0.2)]
    kinds += [("garment", f"cut {share}") for i in items for share in (0.1, 0.2)]
    classes += [labels[i] for i in items for share in (0.1, 0.2)]
    pictures = [(kind, pic) for seed in seeds for kind, pic in non_garments(seed) + strays(seed)]
    with ProcessPoolExecutor(2) as pool:
        pres = list(tqdm(pool.map(_garment, jobs, chunksize=4), total=len(jobs), desc="garments"))
        pres += list(tqdm(pool.map(_cut, cuts, chunksize=4), total=len(cuts), desc="cut garments"))
        pres += list(
            tqdm(pool.map(_measured, [pic for _, pic in pictures], chunksize=2), total=len(pictures), desc="others")
        )
    kinds += [("other", kind) for kind, _ in pictures]
    classes += [-1] * len(pictures)
    return kinds, np.asarray(classes), pres


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-cell", type=int, default=40)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--model", default="resnet")
    p.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    p.add_argument("--out", default="picture-signals-val")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    predictor = Predictor.from_source(args.checkpoints, only=args.model)
    kinds, _, pres = validation_pictures(args.per_cell, args.seeds)
    rows = []
    entry = predictor.models[args.model]
    limits = entry.config["notice_threshold"]
    for (group, kind), pre in zip(kinds, pres):
        ((probs, rules),) = classify_batch(predictor, [pre], args.model)
        x = torch.from_numpy(pre.pixels[None, None].astype(np.float32) / 255)
        (maha,), (thing,), _ = detector_scores(entry, entry.model.penultimate(x))
        rows.append(
            {
                "group": group,
                "kind": kind,
                "found": pre.found_item,
                **{
                    m: int(v) if isinstance(v := getattr(pre, m), (bool, int)) else round(float(v), 4) for m in MEASURES
                },
                "edge_reaches": [round(float(r), 4) for r in pre.edge_reach],
                "cut_ratio": round(cut_ratio(pre), 4),
                "mahalanobis_over_limit": round(maha / limits["mahalanobis"], 4),
                "outlier_minus_limit": round(thing - limits["outlier"], 4),
                "rules": list(rules),
                "top1": int(np.argmax(probs)),
            }
        )
    meta = {"per_cell": args.per_cell, "seeds": args.seeds}
    path = record(args.out, rows, torch.device("cpu"), meta, row_per_line=True)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
