"""Does the model's own doubt mark the non-garments that the notice lets through? Two signals that need no new
model: how steady the answer is when the 28x28 is mirrored or moved by 2 pixels (the shifts and flips the model
trained with), and the calibrated top probability.

    python -m lab.steadiness [--per-cell 40] [--seeds 1 2] [--out steadiness-val]

On lab.picture_signals' validation pictures (garment photos of every renderer and level, photos cut by the frame,
and the old and new non-garment kinds at seeds 1 and 2), the notice as it is first; then, for each signal and
limit, the share of all garment photos and of all non-garments that it would flag besides. Results go to
lab/results/<out>-cpu.json.
"""

import argparse
from collections import Counter

import numpy as np
import torch

from fmnist.serving.predict import Predictor
from fmnist.tag.core import classify_batch
from lab._common import ROOT, record
from lab.picture_signals import validation_pictures


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-cell", type=int, default=40)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--out", default="steadiness-val")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    predictor = Predictor.from_source(ROOT / "checkpoints", only="resnet")
    model = predictor.models["resnet"].model.eval()
    kinds, classes, pres = validation_pictures(args.per_cell, args.seeds)
    answers = classify_batch(predictor, pres, "resnet")  # the app's answer and notice for each picture
    flagged = np.array([bool(rules) for _, rules in answers])
    top_p = np.array([probs.max() for probs, _ in answers])
    x = torch.from_numpy(np.stack([pre.pixels for pre in pres])[:, None].astype(np.float32) / 255)
    views = [x, torch.flip(x, [3])] + [torch.roll(x, s, d) for s in (-2, 2) for d in (2, 3)]
    tops = np.stack([model(v).argmax(1).numpy() for v in views], 1)
    steady = (tops == tops[:, :1]).mean(1)  # the share of the six views whose answer is the picture's own
    garment = classes >= 0
    rows = [
        {
            "signal": "the notice as it is",
            "garments": float(flagged[garment].mean()),
            "others": float(flagged[~garment].mean()),
        }
    ]
    for name, extra in (
        ("any view answers otherwise", steady < 1),
        ("two or more views answer otherwise", steady <= 4 / 6),
        ("top probability under 0.6", top_p < 0.6),
        ("top probability under 0.5", top_p < 0.5),
    ):
        more = extra & ~flagged
        rows.append({"signal": name, "garments": float(more[garment].mean()), "others": float(more[~garment].mean())})
    for row in rows:
        print(f"{row['signal']:36s} garments {row['garments']:6.1%}  non-garments {row['others']:6.1%}")
    missed = Counter(kind for (_, kind), f, g in zip(kinds, flagged, garment) if not f and not g)
    print("non-garments the notice lets through:", dict(missed))
    meta = {
        "per_cell": args.per_cell,
        "seeds": args.seeds,
        "garments": int(garment.sum()),
        "others": int((~garment).sum()),
        "let_through": dict(missed),
    }
    print("wrote", record(args.out, rows, torch.device("cpu"), meta))


if __name__ == "__main__":
    main()
