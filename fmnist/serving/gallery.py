"""Similar items: the data-set images nearest to a picture in a model's feature space.

An explanation by example ("it looks like these") and the start of visual search for a shop. The gallery
is a stratified subset of the training split (GALLERY_SIZE images, the same share of every class), stored
once beside the checkpoints as GALLERY_NAME (the images xz-compressed inside it: 3.6 MB against 7.8 MB raw, 0.3 s
to read); each model stores its own penultimate-layer features of it, L2-normalised and quantised to int8 with a
scale per row, as FEATURES_NAME in its folder (half of float16's bytes; a cosine similarity moves by under 0.01,
benchmarks/similar.py). A query is one matrix-vector product of cosine similarities (10,000 x D), well under a
millisecond on one CPU core.

    python -m fmnist.checkpoints gallery --out checkpoints   # for checkpoints trained before the gallery existed
"""

from __future__ import annotations

import hashlib
import logging
import lzma
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)
GALLERY_NAME = "gallery.safetensors"  # beside the model folders: the images and their labels
FEATURES_NAME = "gallery_features.safetensors"  # in each model folder: that model's features of the images
GALLERY_SIZE = 10_000
NEIGHBOURS = 8
MAX_DIMS = 256  # wider features (MobileNet's 1,024) are reduced by PCA, so that each file stays under 10 MB


@dataclass
class Gallery:
    images: np.ndarray  # (N, 28, 28) uint8, light item on black, as in the data set
    labels: np.ndarray  # (N,) int64

    @property
    def digest(self) -> str:
        """Names this exact set of images: a model's features are only used with the gallery they describe."""
        return hashlib.sha256(self.images.tobytes() + self.labels.tobytes()).hexdigest()[:16]


def choose(labels: np.ndarray, size: int = GALLERY_SIZE, seed: int = 0) -> np.ndarray:
    """Indices of a seeded, stratified subset of `size` items (every class keeps its share)."""
    from fmnist.data import stratified_split

    if size >= len(labels):
        return np.arange(len(labels))
    return stratified_split(labels, size, seed)[1]


def save_gallery(root: Path, images: np.ndarray, labels: np.ndarray) -> Gallery:
    from safetensors.numpy import save

    from fmnist.checkpoints.store import atomic_write_bytes

    gallery = Gallery(np.ascontiguousarray(images, dtype=np.uint8), np.ascontiguousarray(labels, dtype=np.int64))
    packed = np.frombuffer(lzma.compress(gallery.images.tobytes(), preset=9 | lzma.PRESET_EXTREME), np.uint8)
    atomic_write_bytes(
        Path(root) / GALLERY_NAME,
        save(
            {"images_xz": packed, "labels": gallery.labels.astype(np.uint8)},
            metadata={"digest": gallery.digest, "images_shape": ",".join(map(str, gallery.images.shape))},
        ),
    )
    return gallery


def load_gallery(root: Path) -> Gallery | None:
    path = Path(root) / GALLERY_NAME
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), "np") as f:
        meta, arrays = f.metadata() or {}, {k: f.get_tensor(k) for k in f.keys()}
    labels = arrays["labels"].astype(np.int64)
    if "images" in arrays:  # the uncompressed layout of earlier galleries
        return Gallery(arrays["images"], labels)
    shape = tuple(int(n) for n in meta["images_shape"].split(","))
    images = np.frombuffer(lzma.decompress(arrays["images_xz"].tobytes()), np.uint8).reshape(shape)
    return Gallery(images, labels)


def ensure_gallery(
    root: Path, train_images: torch.Tensor, train_labels: torch.Tensor, seed: int = 0, size: int = GALLERY_SIZE
) -> Gallery:
    """The gallery in root, made from the training split the first time a model is saved there."""
    gallery = load_gallery(root)
    if gallery is not None:
        return gallery
    labels = train_labels.cpu().numpy()
    idx = choose(labels, size, seed)
    log.info("gallery: %d training images, stratified, into %s", len(idx), Path(root) / GALLERY_NAME)
    return save_gallery(root, train_images.cpu().numpy()[idx], labels[idx])


@torch.inference_mode()
def embed(model: torch.nn.Module, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    """(N, D) float32 penultimate features of uint8 (N, 28, 28) images, each of unit length."""
    dev = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(images), batch):
            # torch.tensor copies: a read-only array (the gallery as safetensors loads it) raises no warning
            x = torch.tensor(images[i : i + batch], device=dev).float().div(255.0)[:, None]
            out.append(model.penultimate(x).float().cpu())
    finally:
        model.train(was_training)
    feats = torch.cat(out).numpy()
    return _unit(feats)


def quantise(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """int8 rows and a float16 scale per row: row ~= int8 * scale, each row's largest entry at +-127."""
    scale = np.maximum(np.abs(features).max(axis=1, keepdims=True), 1e-12) / 127.0
    return np.round(features / scale).astype(np.int8), scale.astype(np.float16)


def write_features(folder: Path, model: torch.nn.Module, gallery: Gallery) -> Path:
    """Store a model's features of the gallery in its folder, as int8 with a scale per row (quantise); features
    wider than MAX_DIMS are first reduced by PCA (fitted on the gallery), whose mean and projection are stored
    beside them in float16."""
    from safetensors.numpy import save

    from fmnist.checkpoints.store import atomic_write_bytes

    feats = embed(model, gallery.images)
    arrays = {}
    if feats.shape[1] > MAX_DIMS:
        mean = feats.mean(0)
        _, _, vt = np.linalg.svd(feats - mean, full_matrices=False)
        arrays["pca_mean"] = mean.astype(np.float16)
        arrays["pca_projection"] = np.ascontiguousarray(vt[:MAX_DIMS].T, dtype=np.float16)  # safetensors writes C order
        feats = _unit((feats - arrays["pca_mean"].astype(np.float32)) @ arrays["pca_projection"].astype(np.float32))
    arrays["features_int8"], arrays["features_scale"] = quantise(feats)
    path = Path(folder) / FEATURES_NAME
    atomic_write_bytes(path, save(arrays, metadata={"gallery": gallery.digest}))
    return path


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class SimilarItems:
    """The nearest gallery images to a query, in one model's feature space."""

    def __init__(
        self,
        gallery: Gallery,
        features: np.ndarray,
        pca_mean: np.ndarray | None = None,
        pca_projection: np.ndarray | None = None,
    ):
        if len(features) != len(gallery.labels):
            raise ValueError(f"{len(features)} features for a gallery of {len(gallery.labels)} images")
        self.gallery = gallery
        # int8 (or float16) on disk, float32 to multiply; in torch, not numpy: numpy's OpenBLAS threads spin after a
        # product and took the cores from the model's next request (measured: resnet's 28x28 request 9 -> 22 ms)
        self.features = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        self.pca_mean = None if pca_mean is None else torch.from_numpy(np.asarray(pca_mean, np.float32))
        self.pca_projection = (
            None if pca_projection is None else torch.from_numpy(np.ascontiguousarray(pca_projection, dtype=np.float32))
        )

    @classmethod
    def load(cls, root: Path, folder: Path) -> SimilarItems | None:
        """The index for the model in folder, or None when the gallery or its features are missing or do not
        belong together (features of another gallery)."""
        gallery = load_gallery(root)
        path = Path(folder) / FEATURES_NAME
        if gallery is None or not path.is_file():
            return None
        from safetensors import safe_open

        with safe_open(str(path), "np") as f:
            if (f.metadata() or {}).get("gallery") != gallery.digest:
                log.warning("%s describes another gallery than %s; no similar items", path, root / GALLERY_NAME)
                return None
            pca = [f.get_tensor(k) if k in f.keys() else None for k in ("pca_mean", "pca_projection")]
            if "features_int8" in f.keys():
                features = f.get_tensor("features_int8").astype(np.float32) * f.get_tensor("features_scale")
            else:  # float16 features of earlier folders
                features = f.get_tensor("features")
            return cls(gallery, features, *pca)

    @torch.inference_mode()
    def nearest(self, feats: torch.Tensor | np.ndarray, k: int = NEIGHBOURS) -> list[tuple[int, int, float]]:
        """(gallery index, label, cosine similarity) of the k nearest items, nearest first. feats is (D,)
        or (1, D) penultimate features."""
        q = torch.as_tensor(feats).detach().float().cpu().reshape(-1)
        q = q / q.norm().clamp_min(1e-12)
        if self.pca_projection is not None:
            q = (q - self.pca_mean) @ self.pca_projection
            q = q / q.norm().clamp_min(1e-12)
        sims = self.features @ q
        top = torch.topk(sims, min(k, len(sims)))
        return [(int(i), int(self.gallery.labels[i]), float(v)) for v, i in zip(top.values, top.indices)]
