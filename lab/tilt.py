"""Does the tilt step turn a shoe further than it was turned, and would demanding more evidence for larger angles
help? On clean silhouettes of validation items (the 28x28 item at 10x, above grey level 20), each item upright
and turned by an angle drawn from [-20, 20] degrees, the step's angle is compared with the true one, for the rule
as it is (the bounding box must shrink by 3 %) and for rules that ask a further share per degree.

    python -m lab.tilt [--items 240] [--out tilt-val]

Validation only; results go to lab/results/<out>-cpu.json.
"""

import argparse

import numpy as np
import torch
from PIL import Image

from fmnist.data import load_splits
from fmnist.photo.intensity import box_areas
from fmnist.photo.render import tilt_item
from lab._common import record

RULES = ((0.03, 0.0), (0.03, 0.002), (0.03, 0.004), (0.03, 0.006))  # (shrink, further shrink per degree)
SHOES = (5, 7, 9)  # Sandal, Sneaker, Ankle boot


def chosen(angles: np.ndarray, area: np.ndarray, shrink: float, per_degree: float) -> float:
    need = (1 - shrink - per_degree * np.abs(angles)) * area[len(angles) // 2]
    ok = area < need
    return float(angles[int(np.argmin(np.where(ok, area, np.inf)))]) if ok.any() else 0.0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=240)
    p.add_argument("--out", default="tilt-val")
    args = p.parse_args()
    val = load_splits(allow_download=False).val
    images, labels = val.images.numpy(), val.labels.numpy()
    rng = np.random.default_rng(0)
    rows = []
    for group, idx in (
        ("shoes", np.flatnonzero(np.isin(labels, SHOES))[: args.items]),
        ("other items", np.flatnonzero(~np.isin(labels, SHOES))[: args.items]),
    ):
        found = {rule: {"upright": [], "turned": []} for rule in RULES}
        for i in idx:
            for kind in ("upright", "turned"):
                true = 0.0 if kind == "upright" else float(rng.uniform(-20, 20))
                item = tilt_item(images[i], true) if true else images[i]
                mask = np.asarray(Image.fromarray(item).resize((280, 280), Image.Resampling.BILINEAR)) > 20
                angles, area = box_areas(mask)
                for rule in RULES:
                    est = chosen(angles, area, *rule)
                    found[rule][kind].append((min(abs(true - est), abs(true + est)), abs(true)))
        for rule in RULES:
            up, turned = np.array(found[rule]["upright"]), np.array(found[rule]["turned"])
            rows.append(
                {
                    "items": group,
                    "shrink": rule[0],
                    "per_degree": rule[1],
                    "upright_turned_over_5_deg": float((up[:, 0] > 5).mean()),
                    "turned_left_mean_deg": float(turned[:, 0].mean()),
                    "turned_left_over_10_deg": float((turned[:, 0] > 10).mean()),
                    "turned_further_than_it_was": float((turned[:, 0] > turned[:, 1] + 2).mean()),
                }
            )
            print(rows[-1], flush=True)
    print("wrote", record(args.out, rows, torch.device("cpu"), {"items": args.items}))


if __name__ == "__main__":
    main()
