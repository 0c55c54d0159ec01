"""What the photo probes share (lab.hard_shadows, lab.white_on_white, lab.dark_floors,
lab.crumpled, lab.cropped): their flags, the validation items they draw, the default model's
answers through the app's pipeline, their loop over variants, their result file, the picture of their misses,
and the steps of drawing a photo that they have in common (each takes its draws from the probe's generator in
the same order as before)."""

import argparse
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from benchmarks.photos import _slim
from fmnist.data import load_splits, stratified_split
from fmnist.photo import preprocess
from fmnist.photo.render.cut import (  # noqa: F401 (the probes import them from here)
    garment_on_light_surface,
    item_layer,
    jpeg,
    lay,
    light_field,
    placement,
    snapshot,
)
from fmnist.serving.predict import Predictor
from fmnist.tag.core import classify_batch
from lab._common import ROOT, record


@dataclass
class Probe:
    args: argparse.Namespace
    images: np.ndarray  # the validation images, (N, 28, 28) uint8
    labels: np.ndarray
    items: np.ndarray  # the drawn items' indices, per_class of each class
    answers: Callable  # preprocessed pictures -> [(class index, whether a notice fires)]
    raw: np.ndarray  # whether each item as a 28x28 image is read right

    def right(self, got) -> np.ndarray:
        """Whether each item's answer (from answers) is its class."""
        return np.array([a == self.labels[i] for (a, _), i in zip(got, self.items)])

    def cell(self, got) -> dict:
        """One cell's figures from its answers: the accuracy through the pipeline beside the 28x28 one on the
        same items, their paired gap with its standard error, and the share of pictures with a notice."""
        right = self.right(got)
        diff = self.raw.astype(float) - right
        return {
            "raw_acc": float(self.raw.mean()),
            "photo_acc": float(right.mean()),
            "gap": float(diff.mean()),
            "gap_se": float(diff.std(ddof=1) / np.sqrt(len(diff))),
            "flagged": float(np.mean([f for _, f in got])),
        }


def summary(row: dict) -> str:
    """A cell's figures on one line."""
    return f"photo {row['photo_acc']:.3f}  gap {row['gap']:+.3f} ± {row['gap_se']:.3f}  notices {row['flagged']:.1%}"


def probe(doc: str, out: str, per_class: int, misses: str | None = None) -> Probe:
    """Parse the probe's flags (--per-class, --seed, --model, --checkpoints, --out, and --misses with a figure's
    default path where the probe draws one), draw its validation items and read them as 28x28 images."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=per_class)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--model", default="resnet")
    p.add_argument("--checkpoints", default=str(ROOT / "checkpoints"), help="the folder of checkpoints to read")
    p.add_argument("--out", default=out)
    if misses:
        p.add_argument(
            "--misses",
            nargs="?",
            const=misses,
            default=None,
            help=f"also draw a picture of the misses (default path {misses})",
        )
    args = p.parse_args()
    torch.set_grad_enabled(False)
    predictor = Predictor.from_source(args.checkpoints, only=args.model)
    val = load_splits(allow_download=False).val
    images, labels = val.images.numpy(), val.labels.numpy()
    items = stratified_split(labels, 10 * args.per_class, args.seed)[1]

    def answers(pres):
        return [
            (int(np.argmax(probs)), bool(rules))
            for pre in pres
            for probs, rules in classify_batch(predictor, [pre], args.model)
        ]

    raw = np.array(
        [a == labels[i] for (a, _), i in zip(answers([preprocess(Image.fromarray(images[i])) for i in items]), items)]
    )
    return Probe(args, images, labels, items, answers, raw)


def variant_cells(run: Probe, variants: dict, key: str, draw: Callable) -> tuple[list[dict], dict]:
    """Each variant's cell over the probe's items, drawn and preprocessed in two worker processes:
    draw(item, the variant's value, seed) -> the photo, with the same seed for an item in every variant. -> the
    rows (key: the variant's name, then Probe.cell's figures) and, per variant, whether each item was read right."""
    rows, right = [], {}
    with ProcessPoolExecutor(2) as pool:
        for name, value in variants.items():
            jobs = [(draw, run.images[i], value, run.args.seed * 100003 + int(i)) for i in run.items]
            got = run.answers(list(tqdm(pool.map(_drawn, jobs, chunksize=4), total=len(jobs), desc=name)))
            right[name] = run.right(got)
            rows.append({key: name, **run.cell(got)})
            print(f"{name:8s}: {summary(rows[-1])}")
    return rows, right


def _drawn(args):
    draw, item, value, seed = args
    return _slim(preprocess(draw(item, value, seed)))


def save(run: Probe, rows: list[dict]) -> None:
    """The probe's rows to lab/results/<--out>-cpu.json, with its items, model and split."""
    path = record(
        run.args.out, rows, torch.device("cpu"), {"items": len(run.items), "model": run.args.model, "split": "val"}
    )
    print(f"raw 28x28 {run.raw.mean():.3f}; wrote {path}")


def misses_picture(run: Probe, items, path: str, heads: tuple[str, str, str], photos: Callable) -> str:
    """One row per item: the photo the model misreads, what it saw of it, what it saw of the photo it read right,
    and the data set's 28x28 item; the item's class beneath the photo and the wrong answer beneath what it saw.
    photos(item index, seed) -> (the misread photo, the photo read right); heads names the first three columns."""
    from PIL import ImageDraw, ImageFont

    from fmnist import CLASS_NAMES

    side, font = 150, ImageFont.load_default(size=13)
    sheet = Image.new("RGB", (4 * side, 20 + len(items) * (side + 20)), "white")
    pen = ImageDraw.Draw(sheet)
    for k, head in enumerate((*heads, "data-set item")):
        pen.text((k * side + 4, 3), head, fill="black", font=font)
    for r, i in enumerate(items):
        seed, y = run.args.seed * 100003 + int(i), 20 + r * (side + 20)
        photo, good = photos(i, seed)
        pre = preprocess(photo)
        seen = [pre.pixels, preprocess(good).pixels]
        ((answer, _),) = run.answers([_slim(pre)])
        thumb = photo.convert("RGB")
        thumb.thumbnail((side - 6, side - 6))
        sheet.paste(thumb, (3, y + 3))
        for k, grey in enumerate([*seen, run.images[i]], start=1):
            big = Image.fromarray(grey).resize((side - 6, side - 6), Image.Resampling.NEAREST).convert("RGB")
            sheet.paste(big, (k * side + 3, y + 3))
        pen.text((4, y + side), CLASS_NAMES[run.labels[i]], fill="black", font=font)
        pen.text((side + 4, y + side), CLASS_NAMES[answer], fill=(200, 0, 0), font=font)
    sheet.save(path)
    return path
