"""Does the shape of what the model sees mark the digits and other strokes the notice lets through? Three
measures of the 28x28's silhouette (its pixels over 2 % of its brightest), each against a limit that 99.5 % of
10,000 training items stay on the right side of:

- thickness: the largest inscribed circle's radius over the square root of the area (a stroke is thin);
- hole: the largest enclosed dark region, in pixels (a digit's loop), limited for every class but Bag and Sandal;
- solidity: the area over its convex hull's, limited for the class the model answers.

    python -m lab.stroke_shape [--per-cell 20] [--seeds 1 2] [--out stroke-shape-val]

On the validation pictures of lab.picture_signals (garment photos of every renderer and level, cut ones, and the
non-garments of the old and new kinds at seeds 1 and 2), for each measure: the share of garment photos that the
notice lets through and the measure would flag, and the share of the non-garments the notice lets through that it
would catch. Results go to lab/results/<out>-cpu.json.
"""

import argparse

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.morphology import convex_hull_image

from fmnist import CLASS_NAMES
from fmnist.data import load_raw
from fmnist.serving.predict import Predictor
from fmnist.tag.core import classify_batch
from lab._common import ROOT, record
from lab.picture_signals import validation_pictures

HOLES_ALLOWED = {CLASS_NAMES.index("Bag"), CLASS_NAMES.index("Sandal")}


def silhouette(pixels: np.ndarray) -> np.ndarray:
    return pixels > max(0.02 * int(pixels.max()), 1)


def measures(pixels: np.ndarray) -> tuple[float, int, float]:
    """(thickness, largest hole in pixels, solidity) of one 28x28."""
    m = silhouette(pixels)
    if m.sum() < 3:
        return 1.0, 0, 1.0
    thickness = ndi.distance_transform_edt(np.pad(m, 1)).max() / np.sqrt(m.sum())
    labels, n = ndi.label(ndi.binary_fill_holes(m) & ~m)
    hole = int(np.bincount(labels.ravel())[1:].max()) if n else 0
    return float(thickness), hole, float(m.sum() / convex_hull_image(m).sum())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-cell", type=int, default=20)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--out", default="stroke-shape-val")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    raw = load_raw(allow_download=False)
    train = np.array([measures(x) for x in raw.train_images[:10000]])
    labels = raw.train_labels[:10000]
    thin_limit = float(np.percentile(train[:, 0], 0.5))
    hole_limit = float(np.percentile(train[~np.isin(labels, list(HOLES_ALLOWED)), 1], 99.5))
    solid_limits = [float(np.percentile(train[labels == c, 2], 0.5)) for c in range(len(CLASS_NAMES))]
    predictor = Predictor.from_source(str(ROOT / "checkpoints"), only="resnet")
    kinds, _, pres = validation_pictures(args.per_cell, args.seeds)
    answers = classify_batch(predictor, pres, "resnet")
    fired = {"thickness": [], "hole": [], "solidity": []}
    for pre, (probs, _) in zip(pres, answers):
        thickness, hole, solidity = measures(pre.pixels)
        answer = int(np.argmax(probs))
        fired["thickness"].append(thickness < thin_limit)
        fired["hole"].append(hole > hole_limit and answer not in HOLES_ALLOWED)
        fired["solidity"].append(solidity < solid_limits[answer])
    passed = np.array([not rules for _, rules in answers])
    garment = np.array([group == "garment" for group, _ in kinds])
    rows = []
    for name, f in fired.items():
        f = np.asarray(f)
        caught = f & passed & ~garment
        rows.append(
            {
                "measure": name,
                "garments_newly_flagged": float((f & passed & garment).mean() / garment.mean()),
                "garments": int(garment.sum()),
                "non_garments_passed": int((passed & ~garment).sum()),
                "non_garments_caught": int(caught.sum()),
                "caught_kinds": sorted({kind for (_, kind), c in zip(kinds, caught) if c}),
            }
        )
        print(rows[-1], flush=True)
    limits = {"thickness": thin_limit, "hole": hole_limit, "solidity": dict(zip(CLASS_NAMES, solid_limits))}
    path = record(args.out, rows, torch.device("cpu"), {"limits": limits, "seeds": args.seeds}, row_per_line=True)
    print(f"({path})")


if __name__ == "__main__":
    main()
