"""Domain-randomised photo data: what the app's pipeline makes of training items rendered as photographs
(built by python -m fmnist.photo.build), kept as one .npz of 28x28 images beside their labels.

Training mixes them in with `--photo-data PATH --photo-share S`: each training image is swapped, with chance S,
for a random picture of this cache (fmnist.data.DeviceLoader), so an epoch keeps its length and cost.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fmnist.data import Split, sha256

# 4,000 training + 800 validation pictures, 2.3 MB: small enough to keep in the repository, so that a training
# command (and a GPU machine, which cannot build it in its minutes) names a file every clone has
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "data" / "photo-data-v6.npz"
BUILD_COMMAND = "python -m fmnist.photo.build"
PIPELINE_MODULES = ("decode", "backdrop", "segment", "intensity", "pipeline")  # what turns a photo into 28x28

log = logging.getLogger(__name__)


class PhotoDataError(ValueError):
    """The photo data cache is missing or unreadable."""


@dataclass
class PhotoData:
    train: Split  # rendered training items, through fmnist.photo's pipeline
    val: dict  # images, labels, renderer, level (numpy): rendered validation items, every renderer
    meta: dict
    digest: str  # sha256 of the file: recorded with a run, so that --resume and the card know which cache


def pipeline_sha256() -> str:
    """One digest of the pipeline's source, module by module: a cache built by another pipeline is stale."""
    digest = hashlib.sha256()
    for name in PIPELINE_MODULES:
        digest.update((Path(__file__).parent / f"{name}.py").read_bytes())
    return digest.hexdigest()


def save_photo_data(path: str | Path, train: dict, val: dict, meta: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            meta=np.asarray(json.dumps(meta)),
            **{f"train_{k}": v for k, v in train.items()},
            **{f"val_{k}": v for k, v in val.items()},
        )
    tmp.replace(path)
    return path


def load_photo_data(path: str | Path, device: str | torch.device = "cpu") -> PhotoData:
    path = Path(path)
    if not path.is_file():
        raise PhotoDataError(
            f"--photo-data {path}: no such file; build it with `{BUILD_COMMAND} --out {path}` "
            f"(a few minutes), or train without --photo-data"
        )
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise PhotoDataError(f"--photo-data {path} cannot be read ({e}); rebuild it with `{BUILD_COMMAND}`") from None
    images, labels = arrays["train_images"], arrays["train_labels"]
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels) or not len(labels):
        raise PhotoDataError(f"--photo-data {path}: expected N 28x28 images with N labels, got {images.shape}")
    train = Split(
        torch.from_numpy(images.astype(np.uint8)).to(device), torch.from_numpy(labels.astype(np.int64)).to(device)
    )
    val = {k[4:]: v for k, v in arrays.items() if k.startswith("val_")}
    meta = json.loads(str(arrays["meta"]))
    if meta.get("pipeline_sha256") != pipeline_sha256():
        log.warning(
            "%s was drawn by another photo pipeline than today's: what learns from it learns pictures the app no "
            "longer makes; rebuild it with `%s --out %s`",
            path,
            BUILD_COMMAND,
            path,
        )
    return PhotoData(train, val, meta, sha256(path))
