"""Does retraining the default model on photo data drawn by today's pipeline read photos better? The bundled
`resnet` learnt its photos from data/photo-data-v4.npz, drawn before light garments on light backdrops were read
against white; this compares it with the same recipe trained on data/photo-data-v6.npz, drawn by today's
pipeline:

    python train.py --models resnet --print-p 0.25 --photo-data data/photo-data-v6.npz --photo-share 0.25 \\
        --out runs/resnet-v6
    python -m fmnist.checkpoints convert --dtype float16 --out runs/resnet-v6 --models resnet
    python -m lab.retrain_v6 --candidate runs/resnet-v6/resnet [--out retrain-v6-val]

Both read the 800 validation photos of data/photo-data-v6.npz (every renderer, `opaque` among them; validation
items, which neither trained on) and the same items as 28x28 images. Per model: the photo and 28x28 accuracy,
the gap per renderer and level, and the data set's validation and test accuracy from its metrics.json; and the
paired difference of the two models on the photos with its standard error. Results go to
lab/results/<out>-cpu.json.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from fmnist.checkpoints import store
from fmnist.data import load_raw
from fmnist.photo.cache import DEFAULT_PATH, load_photo_data
from lab._common import ROOT, record


def read(folder: Path, photos: torch.Tensor, items: torch.Tensor, labels: torch.Tensor):
    model, _ = store.load_folder(folder)
    model = model.float()
    with torch.inference_mode():
        return (model(photos).argmax(1) == labels).numpy(), (model(items).argmax(1) == labels).numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bundled", default=str(ROOT / "checkpoints" / "resnet"))
    p.add_argument("--candidate", required=True, help="the checkpoint folder retrained on the photo data")
    p.add_argument("--photo-data", default=str(DEFAULT_PATH))
    p.add_argument("--out", default="retrain-v6-val")
    args = p.parse_args()
    val = load_photo_data(args.photo_data).val
    raw = load_raw(allow_download=False)
    photos = torch.from_numpy(val["images"]).float().div(255)[:, None]
    items = torch.from_numpy(raw.train_images[val["source_index"]]).float().div(255)[:, None]
    labels = torch.from_numpy(val["labels"].astype(np.int64))
    rows, right = [], {}
    for name, folder in (("bundled", Path(args.bundled)), ("retrained", Path(args.candidate))):
        photo, item = read(folder, photos, items, labels)
        right[name] = photo
        metrics = json.loads((folder / store.METRICS_NAME).read_text())
        row = {
            "model": name,
            "folder": str(folder.resolve().relative_to(ROOT) if folder.resolve().is_relative_to(ROOT) else folder),
            "photo_data": json.loads((folder / store.CONFIG_NAME).read_text())["train_config"]["photo_data"],
            "photo_acc": float(photo.mean()),
            "item_acc": float(item.mean()),
            "gap": float(item.mean() - photo.mean()),
            "dataset_val_acc": metrics["val"]["accuracy"],
            "dataset_test_acc": metrics["test"]["accuracy"],
        }
        for key in ("renderer", "level"):
            for v in np.unique(val[key]):
                m = val[key] == v
                row[f"gap_{v}"] = float(item[m].mean() - photo[m].mean())
        rows.append(row)
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
    diff = right["retrained"].astype(float) - right["bundled"]
    paired = {"photo_acc_difference": float(diff.mean()), "se": float(diff.std(ddof=1) / np.sqrt(len(diff)))}
    print("retrained - bundled on the photos:", paired)
    print(f"({record(args.out, rows, torch.device('cpu'), {'photos': len(labels), 'paired': paired})})")


if __name__ == "__main__":
    main()
