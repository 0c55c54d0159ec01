"""What the photo probes share (benchmarks.hard_shadows, benchmarks.white_on_white, benchmarks.dark_floors,
benchmarks.crumpled, benchmarks.cropped): their flags, the validation items they draw, the default model's
answers through the app's pipeline, their loop over variants, their result file, the picture of their misses,
and the steps of drawing a photo that they have in common (each takes its draws from the probe's generator in
the same order as before)."""

import argparse
import colorsys
import io
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from scipy import ndimage as ndi
from tqdm.auto import tqdm

from benchmarks._common import ROOT, record
from benchmarks.photos import _slim
from fmnist.data import load_splits, stratified_split
from fmnist.photo import preprocess
from fmnist.predict import Predictor
from fmnist.tagging import classify_batch


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


def item_layer(item28: np.ndarray, rng: np.random.Generator):
    """A photo's frame and the item in it: (w, h, side, greys, solid silhouette, soft alpha), the item
    side x side pixels, with its faint rim greys set to the mean of its body (no bright rim where they fade)."""
    w, h = int(rng.uniform(700, 1200)), int(rng.uniform(600, 1000))
    side = int(rng.uniform(0.45, 0.7) * min(w, h))
    greys = np.asarray(Image.fromarray(item28).resize((side, side), Image.Resampling.BILINEAR), np.float32) / 255
    solid = ndi.binary_fill_holes(greys > 0.03)
    alpha = ndi.gaussian_filter(solid.astype(np.float32), 0.7)
    inside = greys[solid & (greys > 0.2)]
    greys = np.where(greys > 0.2, greys, inside.mean() if inside.size else 0.5)
    return w, h, side, greys, solid, alpha


def light_field(h: int, w: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A gentle linear light gradient from a random direction, up to `strength` across the frame."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    return 1 + rng.uniform(0, strength) * (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5))


def placement(h: int, w: int, side: int, rng: np.random.Generator) -> tuple[int, int]:
    """(top, left) of the item: near the centre, within the frame."""
    top = (h - side) // 2 + int(rng.integers(-h // 12, h // 12 + 1))
    left = (w - side) // 2 + int(rng.integers(-w // 12, w // 12 + 1))
    return int(np.clip(top, 0, h - side)), int(np.clip(left, 0, w - side))


def lay(
    scene: np.ndarray, colour: np.ndarray, fabric: np.ndarray, light: np.ndarray, alpha: np.ndarray, top: int, left: int
) -> None:
    """The garment (its colour shaded by its fabric and the light) laid over the scene, in place."""
    side = alpha.shape[0]
    spot = (slice(top, top + side), slice(left, left + side))
    garment = colour[None, None] * fabric[..., None] * light[spot][..., None]
    scene[spot] = alpha[..., None] * garment + (1 - alpha[..., None]) * scene[spot]


def garment_on_light_surface(item28: np.ndarray, rng: np.random.Generator):
    """The draws benchmarks.crumpled and benchmarks.cropped share: the frame and the item (item_layer), a light,
    nearly grey surface under a gentle light gradient, and a garment of any hue at value 0.25-0.9 whose fabric is
    darkened by the item's greys as a shop photo's. -> (scene, light, colour, fabric, solid, alpha, side)."""
    w, h, side, greys, solid, alpha = item_layer(item28, rng)
    surface = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.15), rng.uniform(0.85, 0.97)), np.float32)
    light = light_field(h, w, 0.12, rng)
    scene = surface[None, None] * light[..., None]
    colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.8), rng.uniform(0.25, 0.9)), np.float32)
    fabric = 1 - rng.uniform(0.3, 0.6) * greys
    return scene, light, colour, fabric, solid, alpha, side


def snapshot(scene: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """The scene with a phone's noise (sigma 0.004-0.015) as a JPEG of quality 75-94."""
    h, w = scene.shape[:2]
    return jpeg(scene + rng.normal(0, rng.uniform(0.004, 0.015), (h, w, 1)), int(rng.integers(75, 95)))


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
    """The probe's rows to benchmarks/results/<--out>-cpu.json, with its items, model and split."""
    path = record(
        run.args.out, rows, torch.device("cpu"), {"items": len(run.items), "model": run.args.model, "split": "val"}
    )
    print(f"raw 28x28 {run.raw.mean():.3f}; wrote {path}")


def jpeg(scene: np.ndarray, quality: int) -> Image.Image:
    """The scene (float RGB) as a JPEG of that quality, opened again."""
    out = io.BytesIO()
    Image.fromarray((np.clip(scene, 0, 1) * 255).round().astype(np.uint8)).save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue()))


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
