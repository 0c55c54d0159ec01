"""Would averaging each picture with its mirror image (flip test-time augmentation) read photos better?

    python -m lab.flip_tta [--model resnet] [--photo-data data/photo-data-v4.npz ...] [--out flip-tta-val]

For a model trained with flips, it classifies what the pipeline made of the photo data's rendered validation
photos (the 28x28 each file stores, so nothing is rendered again) and the validation items as 28x28 images:
once as the app does, once with the softmax of the picture and of its mirror image averaged, and once with their
logits averaged. Validation only; the photo data's held-out renderers are marked. Results go to
lab/results/<out>-cpu.json.
"""

import argparse

import numpy as np
import torch

from fmnist.checkpoints import store
from fmnist.data import load_splits
from fmnist.photo.cache import DEFAULT_PATH, load_photo_data
from lab._common import record

WAYS = ("as is", "softmax averaged", "logits averaged")


def answers(model: torch.nn.Module, pixels: torch.Tensor) -> dict[str, np.ndarray]:
    """(N, 28, 28) uint8 -> each way's predicted classes."""
    x = pixels.float().div(255.0).unsqueeze(1)
    plain = torch.cat([model(b) for b in x.split(512)])
    mirror = torch.cat([model(b) for b in x.flip(-1).split(512)])
    return {
        "as is": plain.argmax(1).numpy(),
        "softmax averaged": (plain.softmax(1) + mirror.softmax(1)).argmax(1).numpy(),
        "logits averaged": (plain + mirror).argmax(1).numpy(),
    }


def row(group: str, value, got: dict, labels, held_out: bool = False) -> dict:
    """One group's accuracy each way, from its answers (answers(), the group's part) and labels."""
    r = {"group": group, "value": value, "n": len(labels), "held_out": held_out}
    r |= {way: 100 * float((a == labels).mean()) for way, a in got.items()}
    print(
        f"{group:>9} {str(value):>9} {'(held out)' if held_out else '':>10} n={len(labels):5d} "
        + "  ".join(f"{way} {r[way]:.2f} %" for way in got),
        flush=True,
    )
    return r


def compare(model: torch.nn.Module, answers_of, photo_data: list[str]) -> list[dict]:
    """Each way's accuracy (answers_of(model, pixels) -> {way: predicted classes}) on the validation items as
    28x28, and on each photo data file's validation photos: by renderer, level and print, all of them, and those of
    the renderers the file was tuned on."""
    splits = load_splits(allow_download=False)
    images, labels = splits.val.images, splits.val.labels.numpy()
    rows = [row("items", "28x28", answers_of(model, images), labels) | {"photo_data": None}]
    for path in photo_data:
        photo = load_photo_data(path)
        v, held_out = photo.val, set(photo.meta.get("held_out", []))
        found = v["images"].reshape(len(v["images"]), -1).max(1) > 0
        got, labels = answers_of(model, torch.from_numpy(v["images"].astype(np.uint8))), np.asarray(v["labels"])
        print(path)

        def part(keep, got=got, labels=labels):  # each way's answers and the labels of the pictures kept
            return {way: a[keep] for way, a in got.items()}, labels[keep]

        for key in ("renderer", "level", "printed"):
            for value in sorted(set(np.asarray(v[key]).tolist())):
                keep = found & (np.asarray(v[key]) == value)
                rows.append(
                    row(key, value, *part(keep), key == "renderer" and value in held_out) | {"photo_data": path}
                )
        for name, keep in (("all", found), ("tuned on", found & ~np.isin(v["renderer"], list(held_out)))):
            rows.append(row(name, "", *part(keep)) | {"photo_data": path})
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet")
    p.add_argument("--photo-data", nargs="+", default=[str(DEFAULT_PATH)])
    p.add_argument("--out", default="flip-tta-val")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    model, config = store.load_folder(f"checkpoints/{args.model}")
    if not config.get("train_config", {}).get("augment", {}).get("hflip", False):
        p.error(f"{args.model} was trained without flips: a mirror image is not a picture it knows")
    rows = compare(model, answers, args.photo_data)
    path = record(args.out, rows, torch.device("cpu"), {"model": args.model})
    print(f"({path})")


if __name__ == "__main__":
    main()
