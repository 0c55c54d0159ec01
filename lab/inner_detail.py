"""How much of an item's inner detail (seams, collar, buttons, folds) reaches the model from each renderer's
photos, and whether sharpening what is left brings the answers back.

    python -m lab.inner_detail [--model resnet] [--photo-data data/photo-data-v4.npz] [--out inner-detail-val]

Inner detail is the mean absolute high-pass response (the 28x28 minus its Gaussian blur, sigma 1.5) inside the
item, two pixels in from its outline. It is measured on the validation items as 28x28 images and on the photo
data's rendered validation photos as the pipeline made them (the 28x28 each file stores), per renderer and level;
the held-out renderer is marked. Then each photo is sharpened at test time (the high-pass added back inside the
item until its detail reaches a target, the gain capped) and classified again. Validation only; results go to
lab/results/<out>-cpu.json.
"""

import argparse

import numpy as np
import torch
from scipy import ndimage as ndi

from fmnist.checkpoints import store
from fmnist.data import load_splits
from fmnist.photo.cache import DEFAULT_PATH, load_photo_data
from lab._common import record

SIGMA = 1.5  # the blur the high-pass is taken against, in pixels of the 28x28
SHARPEN = ((12, 2.0), (15, 2.0), (15, 3.0), (18, 2.0))  # (target detail, largest gain) pairs tried


def high_pass(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(high-pass response, the item's inside two pixels in from its outline) of one 28x28 in 0-255."""
    inside = ndi.binary_erosion(image > 30, iterations=2)
    return image - ndi.gaussian_filter(image, SIGMA), inside


def detail(image: np.ndarray) -> float:
    """The mean absolute high-pass response inside the item; NaN for an item too small to have an inside."""
    hp, inside = high_pass(image.astype(float))
    return float(np.abs(hp[inside]).mean()) if inside.sum() > 10 else float("nan")


def sharpened(image: np.ndarray, target: float, max_gain: float) -> np.ndarray:
    """The image with its high-pass added back inside the item, so that its detail reaches target (gain in
    [1, max_gain])."""
    image = image.astype(float)
    hp, inside = high_pass(image)
    if inside.sum() <= 10:
        return image
    gain = np.clip(target / max(float(np.abs(hp[inside]).mean()), 1e-3), 1, max_gain)
    body = ndi.binary_erosion(image > 30, iterations=1)
    out = image.copy()
    out[body] += (gain - 1) * hp[body]
    return np.clip(out, 0, 255)


@torch.inference_mode()
def classes(model: torch.nn.Module, images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.asarray(images, dtype=np.float32) / 255.0)[:, None]
    return torch.cat([model(b) for b in x.split(512)]).argmax(1).numpy()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet")
    p.add_argument("--photo-data", default=str(DEFAULT_PATH))
    p.add_argument("--out", default="inner-detail-val")
    args = p.parse_args()
    model, _ = store.load_folder(f"checkpoints/{args.model}")
    items = load_splits(allow_download=False).val.images.numpy()
    item_detail = np.array([detail(im) for im in items])
    rows = [
        {
            "group": "items as 28x28",
            "n": len(items),
            "detail_quartiles": np.nanpercentile(item_detail, [25, 50, 75]).round(1).tolist(),
        }
    ]
    photo = load_photo_data(args.photo_data)
    v, held_out = photo.val, set(photo.meta.get("held_out", []))
    images, labels = v["images"], np.asarray(v["labels"])
    renderer, level = np.asarray(v["renderer"]), np.asarray(v["level"])
    found = images.reshape(len(images), -1).max(1) > 0
    photo_detail = np.array([detail(im) for im in images])
    answers = {"as is": classes(model, images)}
    for target, gain in SHARPEN:
        answers[f"sharpened to {target}, gain at most {gain:g}"] = classes(
            model, np.stack([sharpened(im, target, gain) for im in images])
        )

    def group(name: str, r: str, keep: np.ndarray) -> dict:  # a group's size and accuracy each way
        return {
            "group": name,
            "held_out": r in held_out,
            "n": int(keep.sum()),
            **{way: 100 * float((a[keep] == labels[keep]).mean()) for way, a in answers.items()},
        }

    for r in sorted(set(renderer.tolist())):
        for lv in sorted(set(level[renderer == r].tolist())):
            keep = found & (renderer == r) & (level == lv)
            rows.append(
                group(f"{r} {lv}", r, keep)
                | {"detail_quartiles": np.nanpercentile(photo_detail[keep], [25, 50, 75]).round(1).tolist()}
            )
    for r in sorted(set(renderer.tolist())):
        rows.append(group(f"{r} (all levels)", r, found & (renderer == r)))
    for row in rows:
        print(
            f"{row['group']:>22} {'(held out)' if row.get('held_out') else '':>10} n={row['n']:5d} "
            f"detail {row.get('detail_quartiles', '')}  " + "  ".join(f"{k} {row[k]:.1f}" for k in answers if k in row),
            flush=True,
        )
    path = record(
        args.out, rows, torch.device("cpu"), {"model": args.model, "photo_data": photo.meta["command"], "sigma": SIGMA}
    )
    print(f"({path})")


if __name__ == "__main__":
    main()
