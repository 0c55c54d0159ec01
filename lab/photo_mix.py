"""Choosing the photo training recipe on validation: each mix of the hand-made degradations (--photo-p) and the
domain-randomised photo data (--photo-share of python -m fmnist.photo.build's cache) trains the same model, which
is then scored on validation items only: the 28x28 images, and the cache's rendered validation pictures as the
pipeline turned them into 28x28, per renderer. The held-out renderer (opaque) never enters training, so its
column is the honest estimate for pictures nobody tuned to.

    python -m lab.photo_mix --model basic_cnn --epochs 4       # on data/photo-data-v3.npz
    python -m lab.photo_mix --mixes 0.5:0,0.5:0.25,0:0.25,0.5:0.5     # photo_p:photo_share pairs
    python -m lab.photo_mix --mixes 0.5:0.25:0,0.5:0.25:0.25,0.5:0.25:0.5 --out-name photo-mix-prints
                                                                              # ... :print_p (fmnist.training.prints)
    (the :bend_p and :flat_p fields after :rotate_deg ran at commit 742927a: lab/README.md)
    python -m lab.photo_mix --photo-data data/photo-data-v4.npz --eval-photo-data data/photo-data-v5.npz
                                            # trained on one cache, scored on another's validation pictures

Besides accuracy it reports the recall of Shirt, T-shirt/top and Coat on the validation items (a print must not
become a Shirt cue), and the accuracy on the validation items printed by the pattern renderer's own print
generator (fmnist.photo.render.pattern.print_pattern, written apart from fmnist.training.prints) at 28x28.

Each mix trains through train.py (a subprocess, seed 0) into runs/photo-mix/; results go to
lab/results/photo-mix-cpu.json.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from fmnist.checkpoints import store
from fmnist.evaluation.reports import format_table
from fmnist.photo.cache import DEFAULT_PATH, load_photo_data
from lab._common import ROOT, record


@torch.inference_mode()
def accuracy_by_renderer(model, val: dict) -> dict:
    images = torch.from_numpy(val["images"]).float().div(255.0)[:, None]
    pred = model(images).argmax(1).numpy()
    right = pred == val["labels"]
    out = {"photo_all": float(right.mean())}
    for r in sorted(set(val["renderer"].tolist())):
        out[f"photo_{r}"] = float(right[val["renderer"] == r].mean())
    if "tilt_deg" in val:  # the cache's turned items (python -m fmnist.photo.build --tilt-share)
        turned = np.abs(val["tilt_deg"]) >= 15
        if turned.any():
            out["photo_tilted_15_30"] = float(right[turned].mean())
            out["photo_upright"] = float(right[val["tilt_deg"] == 0].mean())
    if "printed" in val and val["printed"].any():
        out["photo_printed"] = float(right[val["printed"]].mean())
    return out


CLASSES = {"shirt": 6, "tshirt": 0, "coat": 4}


def printed_val(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """Validation items with a print of the pattern renderer's own generator, drawn inside the silhouette."""
    from fmnist.photo.render.pattern import print_pattern

    rng = np.random.default_rng(seed)
    out = images.astype(np.float32) / 255.0
    for i in range(len(out)):
        _, pattern = print_pattern(28, 28, rng)
        item = out[i] > 0.04
        ink = 1.0 if rng.random() < 0.5 else rng.uniform(0.1, 0.3)
        out[i] = np.where(item, np.maximum(out[i] + rng.uniform(0.3, 0.9) * pattern * (ink - out[i]), 0.05), 0)
        out[i] /= max(out[i].max(), 1e-6)
    return (out * 255).round().astype(np.uint8)


@torch.inference_mode()
def val_scores(model, images: np.ndarray, labels: np.ndarray, printed: np.ndarray) -> dict:
    pred = model(torch.from_numpy(images).float().div(255.0)[:, None]).argmax(1).numpy()
    pred_printed = model(torch.from_numpy(printed).float().div(255.0)[:, None]).argmax(1).numpy()
    out = {
        "printed_val": float((pred_printed == labels).mean()),
        "printed_as_shirt": float(((pred_printed == 6) & (labels != 6)).mean()),
    }
    for name, c in CLASSES.items():
        out[f"recall_{name}"] = float((pred[labels == c] == c).mean())
        out[f"printed_recall_{name}"] = float((pred_printed[labels == c] == c).mean())
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="basic_cnn")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument(
        "--mixes",
        default="0.5:0,0.5:0.25,0:0.25,0.5:0.5",
        help="photo_p:photo_share pairs, optionally :print_p, :rotate_deg, :bend_p and :flat_p after them",
    )
    p.add_argument("--photo-data", default=str(DEFAULT_PATH))
    p.add_argument(
        "--eval-photo-data",
        default=None,
        help="score on this cache's validation pictures instead of --photo-data's (to compare caches)",
    )
    p.add_argument("--out", default="runs/photo-mix")
    p.add_argument("--out-name", default="photo-mix", help="the result file's name in lab/results/")
    args = p.parse_args()
    trained_on = load_photo_data(args.photo_data)
    photo = load_photo_data(args.eval_photo_data) if args.eval_photo_data else trained_on  # what is scored
    from fmnist.data import load_splits

    val = load_splits(allow_download=False).val
    val_images, val_labels = val.images.numpy(), val.labels.numpy()
    printed = printed_val(val_images)
    rows = []
    for mix in args.mixes.split(","):
        photo_p, share, print_p, rotate, bend_p, flat_p = ([float(v) for v in mix.split(":")] + [0.0] * 4)[:6]
        if bend_p or flat_p:
            sys.exit(
                f"{mix}: --bend-p and --flat-p were tried and dropped from train.py; run this at commit 742927a "
                "(lab/README.md)"
            )
        name = (
            f"p{photo_p:g}-s{share:g}"
            + (f"-print{print_p:g}" if print_p else "")
            + (f"-rot{rotate:g}" if rotate else "")
            + (f"-bend{bend_p:g}" if bend_p else "")
            + (f"-flat{flat_p:g}" if flat_p else "")
        )
        out = Path(args.out) / name
        cmd = [
            sys.executable,
            "train.py",
            "--models",
            args.model,
            "--epochs",
            str(args.epochs),
            "--photo-p",
            str(photo_p),
            "--print-p",
            str(print_p),
            "--out",
            str(out),
        ]
        if rotate:  # not one of train.py's flags: a TrainConfig field, given in a --params file
            settings = Path(args.out) / f"{name}.json"
            settings.parent.mkdir(parents=True, exist_ok=True)
            settings.write_text(json.dumps({"train_config": {"rotate_deg": rotate}}))
            cmd += ["--params", str(settings)]
        if share > 0:
            cmd += ["--photo-data", args.photo_data, "--photo-share", str(share)]
        print(" ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        model, _ = store.load_folder(out / args.model)
        metrics = json.loads((out / args.model / "metrics.json").read_text())
        rows.append(
            {
                "mix": name,
                "photo_p": photo_p,
                "photo_share": share,
                "print_p": print_p,
                "rotate_deg": rotate,
                "bend_p": bend_p,
                "flat_p": flat_p,
                "val_28x28": metrics["val"]["accuracy"],
                **accuracy_by_renderer(model.eval(), photo.val),
                **val_scores(model, val_images, val_labels, printed),
            }
        )
        print(rows[-1], flush=True)
    renderers = sorted(
        k
        for k in rows[0]
        if k.startswith("photo_")
        and k not in ("photo_p", "photo_share")
        and not k.startswith(("photo_tilted", "photo_upright", "photo_printed"))
    )
    extra = [
        (k, k.replace("_", " "), ".3f")
        for k in rows[0]
        if k.startswith(("recall_", "printed", "photo_tilted", "photo_upright", "photo_printed"))
    ]
    counts = {r: int(np.sum(photo.val["renderer"] == r[6:])) for r in renderers if r != "photo_all"}
    path = record(
        args.out_name,
        rows,
        torch.device("cpu"),
        {
            "model": args.model,
            "epochs": args.epochs,
            "photo_data": trained_on.meta,
            "eval_photo_data": photo.meta["command"],
            "val_pictures": counts,
            "held_out": photo.meta["held_out"],
        },
    )
    print(
        format_table(
            rows,
            [("mix", "mix", ""), ("val_28x28", "val 28x28", ".3f")]
            + [(r, r[6:] + (" (held out)" if r[6:] in photo.meta["held_out"] else ""), ".3f") for r in renderers]
            + extra,
        )
    )
    print(f"({path})")


if __name__ == "__main__":
    main()
