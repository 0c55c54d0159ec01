"""Does a floor on the found item's intensity, where the picture differs from its backdrop, give a white garment on
white its silhouette back?

    python -m lab.body_floor [--per-class 20] [--cells opaque:pale,...] [--variants none,abs0.05,fnt0.1]

Of the held-out `opaque` renderer's pale validation pictures the default model misreads, a third are found whole
but come out of the pipeline as a seam or a shadow's edge: a pastel garment on a white surface is barely darker than
the surface, so its darkness against the backdrop is near zero everywhere but along one side, and the stretch to
255 leaves a line. The data set's own white garments are a dim body with brighter seams. Here the item's intensity
is given a floor on the pixels of its mask that differ from the backdrop by more than the backdrop's own noise (the
segmentation's `backdrop_like`, which this script adds to its info by reading fmnist/photo/segment.py with one more
key: the pipeline itself is unchanged), never on the backdrop seen through a sandal's straps:

- `abs<F>`: a floor of F (intensity units, before the stretch) on every such pixel;
- `rel<F>`: a floor of F times the item's 98th percentile;
- `fnt<F>`: `rel<F>`, only for an item whose body is faint (its median under a tenth of its 98th percentile).

Each cell is the same validation items (seed 1) drawn by one renderer at one level (seed 7), read by `resnet`
through the app's pipeline with each variant, beside the items as 28x28 images. Results go to
lab/results/<out>-cpu.json.
"""

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from PIL import Image

import fmnist.photo.pipeline as pipeline
import fmnist.photo.segment as segment_module
from benchmarks.photos import _slim
from fmnist.data import load_splits, stratified_split
from fmnist.photo.intensity import item_intensity
from fmnist.photo.render import render_item
from fmnist.serving.predict import Predictor
from fmnist.tag.core import classify_batch
from lab._common import ROOT, record
from lab._probe import Probe, summary

STATE = {"variant": "none"}


def _segment_with_backdrop_like():
    """fmnist.photo.segment.segment, whose info also carries its `backdrop_like` map."""
    source = open(segment_module.__file__).read()
    marker = '"unexplained": 0.0,\n    }'
    assert marker in source, "fmnist/photo/segment.py's info changed: update lab.body_floor"
    space = dict(vars(segment_module))
    exec(
        compile(
            source.replace(marker, '"unexplained": 0.0,\n        "backdrop_like": backdrop_like,\n    }'),
            segment_module.__file__,
            "exec",
        ),
        space,
    )
    return space["segment"]


def floored_intensity(rgb, info, mask=None):
    x = item_intensity(rgb, info, mask)
    variant = STATE["variant"]
    if variant == "none" or mask is None or not mask.any() or min(mask.shape) < 64:
        return x
    where = mask & ~info["backdrop_like"]
    peak = float(np.percentile(x[mask], 98))
    kind, value = variant[:3], float(variant[3:])
    if kind == "abs":
        floor = value
    elif kind == "rel":
        floor = value * peak
    elif kind == "fnt":
        if not where.any() or np.median(x[where]) >= 0.1 * peak:
            return x
        floor = value * peak
    else:
        raise ValueError(f"unknown variant {variant}")
    return np.where(where, np.maximum(x, floor), x)


def _job(args):
    renderer, level, item, index, variants = args
    picture = render_item(renderer, level, item, 7, int(index))
    out = []
    for variant in variants:
        STATE["variant"] = variant
        out.append(_slim(pipeline.preprocess(picture)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=20)
    p.add_argument(
        "--cells",
        default="scenes:pale,tint:pale,pattern:pale,pattern:textured,scenes:everyday,tint:everyday,"
        "opaque:pale,opaque:everyday",
        help="renderer:level pairs",
    )
    p.add_argument("--variants", default="none,abs0.05,fnt0.1")
    p.add_argument("--out", default="body-floor-val")
    args = p.parse_args()
    pipeline.segment = _segment_with_backdrop_like()
    pipeline.item_intensity = floored_intensity
    torch.set_grad_enabled(False)
    variants = args.variants.split(",")
    val = load_splits(allow_download=False).val
    images, labels = val.images.numpy(), val.labels.numpy()
    items = stratified_split(labels, 10 * args.per_class, 1)[1]
    predictor = Predictor.from_source(str(ROOT / "checkpoints"), only="resnet")

    def answers(pres):
        got = []
        for start in range(0, len(pres), 64):
            got += [(int(np.argmax(pr)), bool(r)) for pr, r in classify_batch(predictor, pres[start : start + 64])]
        return got

    STATE["variant"] = "none"
    raw_pres = [_slim(pipeline.preprocess(Image.fromarray(images[i]))) for i in items]
    raw = np.array([a == labels[i] for (a, _), i in zip(answers(raw_pres), items)])
    run = Probe(args, images, labels, items, answers, raw)
    rows = []
    with ProcessPoolExecutor(2) as pool:
        for cell in args.cells.split(","):
            renderer, level = cell.split(":")
            drawn = list(pool.map(_job, [(renderer, level, images[i], i, variants) for i in items], chunksize=4))
            for k, variant in enumerate(variants):
                rows.append(
                    {
                        "renderer": renderer,
                        "level": level,
                        "variant": variant,
                        **run.cell(answers([d[k] for d in drawn])),
                    }
                )
                print(f"{cell:18s} {variant:8s}: {summary(rows[-1])}", flush=True)
    for variant in variants:
        gaps = [r["gap"] for r in rows if r["variant"] == variant]
        seen = [r["gap"] for r in rows if r["variant"] == variant and r["renderer"] != "opaque"]
        print(f"{variant}: mean gap {np.mean(gaps) * 100:.2f}, without the held-out opaque {np.mean(seen) * 100:.2f}")
    path = record(args.out, rows, torch.device("cpu"), {"items": len(items), "model": "resnet", "split": "val"})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
