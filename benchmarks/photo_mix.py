"""Choosing the photo training recipe on validation: each mix of the hand-made degradations (--photo-p) and the
domain-randomised photo data (--photo-share of scripts/build_photo_data.py's cache) trains the same model, which
is then scored on validation items only: the 28x28 images, and the cache's rendered validation pictures as the
pipeline turned them into 28x28, per renderer. The held-out renderer (opaque) never enters training, so its
column is the honest estimate for pictures nobody tuned to.

    python benchmarks/photo_mix.py --model basic_cnn --epochs 4       # on data/photo-data-v2.npz (the recipe was chosen on v1)
    python benchmarks/photo_mix.py --mixes 0.5:0,0.5:0.25,0:0.25,0.5:0.5     # photo_p:photo_share pairs

Each mix trains through train.py (a subprocess, seed 0) into runs/photo-mix/; results go to
benchmarks/results/photo-mix-cpu.json.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from _common import ROOT, record

from fmnist import checkpoint
from fmnist.photo_data import DEFAULT_PATH, load_photo_data
from fmnist.reports import format_table


@torch.inference_mode()
def accuracy_by_renderer(model, val: dict) -> dict:
    images = torch.from_numpy(val["images"]).float().div(255.0)[:, None]
    pred = model(images).argmax(1).numpy()
    right = pred == val["labels"]
    out = {"photo_all": float(right.mean())}
    for r in sorted(set(val["renderer"].tolist())):
        out[f"photo_{r}"] = float(right[val["renderer"] == r].mean())
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="basic_cnn")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--mixes", default="0.5:0,0.5:0.25,0:0.25,0.5:0.5", help="photo_p:photo_share pairs")
    p.add_argument("--photo-data", default=str(DEFAULT_PATH))
    p.add_argument("--out", default="runs/photo-mix")
    args = p.parse_args()
    photo = load_photo_data(args.photo_data)
    rows = []
    for mix in args.mixes.split(","):
        photo_p, share = (float(v) for v in mix.split(":"))
        name = f"p{photo_p:g}-s{share:g}"
        out = Path(args.out) / name
        cmd = [sys.executable, "train.py", "--models", args.model, "--epochs", str(args.epochs), "--photo-p",
               str(photo_p), "--out", str(out)]
        if share > 0:
            cmd += ["--photo-data", args.photo_data, "--photo-share", str(share)]
        print(" ".join(cmd[1:]), flush=True)
        subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        model, _ = checkpoint.load_folder(out / args.model)
        metrics = json.loads((out / args.model / "metrics.json").read_text())
        rows.append({"mix": name, "photo_p": photo_p, "photo_share": share, "val_28x28": metrics["val"]["accuracy"],
                     **accuracy_by_renderer(model.eval(), photo.val)})
        print(rows[-1], flush=True)
    renderers = sorted(k for k in rows[0] if k.startswith("photo_") and k not in ("photo_p", "photo_share"))
    counts = {r: int(np.sum(photo.val["renderer"] == r[6:])) for r in renderers if r != "photo_all"}
    path = record("photo-mix", rows, torch.device("cpu"),
                  {"model": args.model, "epochs": args.epochs, "photo_data": photo.meta, "val_pictures": counts,
                   "held_out": photo.meta["held_out"]})
    print(format_table(rows, [("mix", "mix", ""), ("val_28x28", "val 28x28", ".3f")]
                       + [(r, r[6:] + (" (held out)" if r[6:] in photo.meta["held_out"] else ""), ".3f")
                          for r in renderers]))
    print(f"({path})")


if __name__ == "__main__":
    main()
