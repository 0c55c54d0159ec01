"""What the photo probes share (benchmarks.hard_shadows, benchmarks.white_on_white): their flags, the
validation items they draw, and the default model's answers through the app's pipeline."""

import argparse
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from PIL import Image

from benchmarks._common import ROOT
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


def probe(doc: str, out: str, per_class: int) -> Probe:
    """Parse the probe's flags (--per-class, --seed, --model, --out), draw its validation items and read them
    as 28x28 images."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=per_class)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--model", default="resnet")
    p.add_argument("--out", default=out)
    args = p.parse_args()
    torch.set_grad_enabled(False)
    predictor = Predictor.from_source(str(ROOT / "checkpoints"), only=args.model)
    val = load_splits(allow_download=False).val
    images, labels = val.images.numpy(), val.labels.numpy()
    items = stratified_split(labels, 10 * args.per_class, args.seed)[1]

    def answers(pres):
        return [(int(np.argmax(probs)), bool(rules)) for pre in pres
                for probs, rules in classify_batch(predictor, [pre], args.model)]

    raw = np.array([a == labels[i] for (a, _), i in zip(answers([preprocess(Image.fromarray(images[i]))
                                                                 for i in items]), items)])
    return Probe(args, images, labels, items, answers, raw)
