"""Does widening the tones inside a photographed item help the model read its inside? A dark or saturated garment
comes out of the pipeline with its whole body near white and its seams, prints and folds squeezed into the top of
the range; this stretches each item's own tones (from a low percentile of the item's pixels to its peak, onto
[floor, 1]) on the 28x28s the photo data stores, and reads them with the default model as they are and stretched.

    python -m lab.tone_expand [--photo-data data/photo-data-v4.npz] [--out tone-expand-val]

The photo data's validation pictures (800, every renderer, `opaque` among them) are validation items as the
pipeline turned them into 28x28; the first 2,000 validation items as 28x28 show what the stretch costs the data
set's own images. Results go to lab/results/<out>-cpu.json.
"""

import argparse
from pathlib import Path

import numpy as np
import torch

from fmnist.checkpoints import store
from fmnist.data import load_splits
from fmnist.photo.cache import DEFAULT_PATH, load_photo_data
from lab._common import ROOT, record

SETTINGS = [(2, 0.1), (5, 0.2), (10, 0.3), (20, 0.3), (5, 0.0)]  # (low percentile, floor)


def stretched(images: np.ndarray, low_q: float, floor: float) -> np.ndarray:
    """Each item's pixels (above 0.02) mapped from [its low_q percentile, its peak] onto [floor, 1]."""
    out = images.copy()
    for k, im in enumerate(images):
        item = im > 0.02
        if item.sum() < 10:
            continue
        v = im[item]
        lo, hi = np.percentile(v, low_q), v.max()
        if hi - lo > 1e-3:
            out[k][item] = np.clip(floor + (1 - floor) * (v - lo) / (hi - lo), floor / 2, 1)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--photo-data", default=str(DEFAULT_PATH))
    p.add_argument("--model", default="resnet")
    p.add_argument("--out", default="tone-expand-val")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    model, _ = store.load_folder(Path(ROOT / "checkpoints" / args.model))
    model.eval()
    val = load_photo_data(args.photo_data).val
    photos, labels, renderers = val["images"].astype(np.float32) / 255, val["labels"], val["renderer"]
    items = load_splits(allow_download=False).val
    item_images = items.images.numpy()[:2000].astype(np.float32) / 255
    item_labels = items.labels.numpy()[:2000]

    def right(images, y):
        out = [model(torch.from_numpy(images[i : i + 256])[:, None]).argmax(1).numpy() for i in range(0, len(y), 256)]
        return np.concatenate(out) == y

    rows = []
    for setting in [None, *SETTINGS]:
        ph = photos if setting is None else stretched(photos, *setting)
        it = item_images if setting is None else stretched(item_images, *setting)
        got = right(ph, labels)
        rows.append(
            {
                "stretch": "none" if setting is None else f"p{setting[0]} floor {setting[1]}",
                "photos": float(got.mean()),
                **{f"photos_{r}": float(got[renderers == r].mean()) for r in np.unique(renderers)},
                "items_28x28": float(right(it, item_labels).mean()),
            }
        )
        print(rows[-1])
    path = record(args.out, rows, torch.device("cpu"), {"photos": len(labels), "items": len(item_labels)})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
