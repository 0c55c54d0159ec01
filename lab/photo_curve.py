"""Would more rendered photos in the photo data read photos better? A learning curve on validation.

    python -m lab.photo_curve [--sizes 1000,2000,4000] [--model basic_cnn] [--epochs 12] [--out photo-curve-val]

The default model reads the photo data's own 3,995 training pictures at 98.5 % and its 800 validation pictures
at 87.0 %: it has learnt the pictures it saw more than photos. Here the same recipe (`--photo-p 0.5
--photo-share 0.25 --print-p 0.25`) trains the same model on the first N training pictures of the photo data (a
seeded shuffle, so each smaller set lies inside the larger), through lab.photo_mix, and each is scored on the
full photo data's validation pictures per renderer (the held-out `opaque` among them) and on the validation
items. A curve still rising at 4,000 says a larger photo data would pay; a flat one says it would not. The
subsets go to runs/photo-curve/; results to lab/results/<out>-cpu.json.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from fmnist.photo.cache import DEFAULT_PATH
from lab._common import RESULTS, ROOT, record


def subset(source: Path, size: int, folder: Path) -> tuple[Path, int]:
    """The photo data with only the first size training pictures of a seeded shuffle (validation as it is), and
    how many it holds."""
    with np.load(source) as z:
        arrays = {k: z[k] for k in z.files}
    keep = np.sort(np.random.default_rng(0).permutation(len(arrays["train_labels"]))[:size])
    for k in [k for k in arrays if k.startswith("train_")]:
        arrays[k] = arrays[k][keep]
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps({**meta, "subset": f"{size} training pictures of {source.name}"}))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"photo-data-{size}.npz"
    np.savez_compressed(path, **arrays)
    return path, len(keep)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,2000,4000")
    p.add_argument("--model", default="basic_cnn")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--photo-data", default=str(DEFAULT_PATH))
    p.add_argument("--out", default="photo-curve-val")
    args = p.parse_args()
    source, folder = ROOT / args.photo_data, ROOT / "runs" / "photo-curve"
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        data, pictures = subset(source, size, folder)
        name = f"{args.out}-{size}"
        cmd = [sys.executable, "-m", "lab.photo_mix", "--model", args.model, "--epochs", str(args.epochs)]
        cmd += ["--mixes", "0.5:0.25:0.25", "--photo-data", str(data), "--eval-photo-data", str(source)]
        cmd += ["--out", str(folder / str(size)), "--out-name", name]
        subprocess.run(cmd, check=True, cwd=ROOT)
        part = RESULTS / f"{name}-cpu.json"
        row = json.loads(part.read_text())["rows"][0]
        part.unlink()  # one file for the curve
        rows.append({"train_pictures": pictures, **row})
    print("wrote", record(args.out, rows, torch.device("cpu"), {"model": args.model, "epochs": args.epochs}))


if __name__ == "__main__":
    main()
