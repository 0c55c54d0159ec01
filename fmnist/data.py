"""Fashion-MNIST data: find or download the IDX files, read them strictly, and split them.

The images stay uint8 tensors; the training batches are drawn, turned into float and augmented on the device
by fmnist.training.loader, so that no per-image Python code runs in the training loop.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import lzma
import os
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fmnist import CLASS_NAMES

log = logging.getLogger(__name__)

# Official gzip files and their sha256 (the same bytes on every mirror). Debian's package recompresses
# Fashion-MNIST, so local files are checked by structure (magic, shape), not by digest.
FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"),
}
# The uncompressed IDX bytes: (size, sha256), the same whatever the file's compression (gzip from a mirror,
# Debian's gzip, or the xz that the GPU call carries). Checked before a GPU call spends its minutes.
RAW_DIGESTS = {
    "train_images": (47_040_016, "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train_labels": (60_008, "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "test_images": (7_840_016, "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "test_labels": (10_008, "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}
MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
MNIST_FILES = {
    "train_images": ("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    "train_labels": ("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    "test_images": ("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    "test_labels": ("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
}
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
EXPECTED_COUNT = {"train": 60_000, "test": 10_000}

# Mean and std of the 60k training pixels in [0, 1]; the models normalise with them internally.
PIXEL_MEAN, PIXEL_STD = 0.2860, 0.3530


@dataclass(frozen=True)
class DatasetSpec:
    """One IDX data set: its files, where to look for them and where to download them from."""

    name: str
    files: dict
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]
    mean: float  # of the training pixels in [0, 1]
    std: float
    subdir: str  # below $FMNIST_DATA_DIR and the cache ("" for Fashion-MNIST, as before)
    system_dir: Path | None  # a distribution's package, if there is one

    def local_dirs(self) -> list[Path]:
        env = os.environ.get("FMNIST_DATA_DIR")
        dirs = ([Path(env) / self.subdir] if env else []) + [cache_dir() / self.subdir]
        return dirs + ([self.system_dir] if self.system_dir else [])


DATASETS = {
    "fashion-mnist": DatasetSpec("fashion-mnist", FILES, MIRRORS, CLASS_NAMES, PIXEL_MEAN, PIXEL_STD, "", DEBIAN_DIR),
    # MNIST's usual statistics (0.1307, 0.3081); same IDX format, same sizes
    "mnist": DatasetSpec(
        "mnist", MNIST_FILES, MNIST_MIRRORS, tuple(str(d) for d in range(10)), 0.1307, 0.3081, "mnist", None
    ),
}


class DataError(RuntimeError):
    """The data set cannot be found, downloaded or read."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fmnist"


def _read_bytes(path: Path) -> bytes:
    """The uncompressed bytes of an IDX file stored raw, as .gz or as .xz."""
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix, open)
    with opener(path, "rb") as f:
        return f.read()


def read_idx(path: str | Path, expected_magic: int, expected_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read one IDX file (gzip, xz or raw) into a uint8 array, checking magic number, shape and length."""
    path = Path(path)
    try:
        raw = _read_bytes(path)
    except (OSError, EOFError, lzma.LZMAError) as e:  # a cut or corrupt compressed stream
        raise DataError(
            f"{path}: cannot read the file ({e}); it is corrupt or truncated, delete it and fetch it again"
        ) from e
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes is too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != expected_magic:
        raise DataError(
            f"{path}: magic number {magic}, expected {expected_magic} "
            f"({'images' if expected_magic == IMAGE_MAGIC else 'labels'} file)"
        )
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header, {len(raw)} bytes for {ndim} dimensions")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if expected_shape is not None and shape != expected_shape:
        raise DataError(f"{path}: shape {shape}, expected {expected_shape}")
    expected_len = header + int(np.prod(shape))
    if len(raw) != expected_len:
        what = "truncated" if len(raw) < expected_len else "has trailing bytes"
        raise DataError(f"{path}: {what}: {len(raw)} bytes, expected {expected_len} for shape {shape}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def locate(folder: Path, name: str) -> Path | None:
    """One of the four files in folder, under its .gz name, as .xz, or uncompressed; None if absent."""
    stem = name.removesuffix(".gz")
    return next((p for p in (folder / name, folder / f"{stem}.xz", folder / stem) if p.is_file()), None)


def _has_all_files(folder: Path, files: dict = FILES) -> bool:
    return all(locate(folder, name) is not None for name, _ in files.values())


def verify_files(folder: str | Path) -> list[str]:
    """What is wrong with the Fashion-MNIST files in folder (missing, unreadable, wrong size or digest of the
    uncompressed bytes); an empty list when all four are the real ones."""
    folder, problems = Path(folder), []
    for key, (name, _) in FILES.items():
        path = locate(folder, name)
        if path is None:
            problems.append(f"{name} (or {name.removesuffix('.gz')}.xz) is missing")
            continue
        try:
            raw = _read_bytes(path)
        except (OSError, EOFError, lzma.LZMAError) as e:
            problems.append(f"{path.name} cannot be read: {e}")
            continue
        size, digest = RAW_DIGESTS[key]
        if len(raw) != size or hashlib.sha256(raw).hexdigest() != digest:
            problems.append(f"{path.name} is not the real file: {len(raw):,} bytes uncompressed, expected {size:,}")
    return problems


def download(dest: Path, mirrors: tuple[str, ...] = MIRRORS, timeout_s: float = 60, files: dict = FILES) -> Path:
    """Download the four files into dest, verifying each sha256; a file is moved in only once verified."""
    dest.mkdir(parents=True, exist_ok=True)
    for name, expected in files.values():
        target = dest / name
        if target.is_file() and sha256(target) == expected:
            continue
        errors = []
        for mirror in mirrors:
            url = mirror + name
            fd, tmp = tempfile.mkstemp(dir=dest, suffix=".tmp")
            try:
                log.info("downloading %s", url)
                with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:
                    shutil.copyfileobj(resp, out)
                got = sha256(Path(tmp))
                if got != expected:
                    raise DataError(f"sha256 mismatch for {url}: got {got}, expected {expected}")
                os.replace(tmp, target)
                break
            except (OSError, DataError) as e:
                errors.append(f"{url}: {e}")
            finally:
                if os.path.exists(tmp):
                    os.unlink(tmp)
        else:
            raise DataError(f"could not download {name}:\n  " + "\n  ".join(errors))
    return dest


def find_data_dir(
    data_dir: str | Path | None = None, allow_download: bool = True, dataset: str = "fashion-mnist"
) -> Path:
    """The first folder holding all four files: --data-dir, $FMNIST_DATA_DIR (its mnist/ subfolder for
    MNIST), the cache, Debian's package (Fashion-MNIST only).

    Where none does, download into the cache, checking every sha256; where that fails, say every way to
    get the data.
    """
    spec = DATASETS[dataset]
    names = ", ".join(n for n, _ in spec.files.values())
    if data_dir is not None:  # an explicit folder is used as given, never silently replaced
        if _has_all_files(Path(data_dir), spec.files):
            return Path(data_dir)
        raise DataError(f"--data-dir {data_dir} does not hold the four {spec.name} files ({names})")
    candidates = spec.local_dirs()
    for folder in candidates:
        if _has_all_files(folder, spec.files):
            return folder
    problem = "downloads are turned off"
    target = cache_dir() / spec.subdir
    if allow_download:
        try:
            return download(target, spec.mirrors, files=spec.files)
        except DataError as e:
            problem = str(e)
    debian = "  - Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist\n" if spec.system_dir else ""
    env_dir = "$FMNIST_DATA_DIR" + (f"/{spec.subdir}" if spec.subdir else "")
    raise DataError(
        f"{spec.name} was not found. Looked in: " + ", ".join(map(str, candidates)) + ".\n"
        f"Download failed: {problem}\n"
        f"Get the four files ({names}) one of these ways:\n"
        + debian
        + f"  - download them from {spec.mirrors[0]} into a folder and pass --data-dir FOLDER, or put them in "
        f"{env_dir}\n"
        f"  - allow network access so they are downloaded (and their sha256 checked) into {target}"
    )


@dataclass
class RawData:
    train_images: np.ndarray  # (60000, 28, 28) uint8
    train_labels: np.ndarray  # (60000,) uint8
    test_images: np.ndarray  # (10000, 28, 28) uint8
    test_labels: np.ndarray  # (10000,) uint8


def load_raw(
    data_dir: str | Path | None = None, allow_download: bool = True, dataset: str = "fashion-mnist"
) -> RawData:
    folder = find_data_dir(data_dir, allow_download, dataset)
    arrays = {}
    for key, (name, _) in DATASETS[dataset].files.items():
        split = key.split("_")[0]
        n = EXPECTED_COUNT[split]
        path = locate(folder, name)
        if key.endswith("images"):
            arrays[key] = read_idx(path, IMAGE_MAGIC, (n, 28, 28))
        else:
            arrays[key] = read_idx(path, LABEL_MAGIC, (n,))
            if arrays[key].max() > 9:
                raise DataError(f"{path}: label {arrays[key].max()} is outside 0-9")
    log.info("%s read from %s", dataset, folder)
    return RawData(**arrays)


def stratified_split(labels: np.ndarray, val_size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a seeded split in which every class keeps its share in both parts."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    train_idx, val_idx = train_test_split(idx, test_size=val_size, stratify=labels, random_state=seed)
    return np.sort(train_idx), np.sort(val_idx)


def _stratified_subset(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    if n >= len(labels):
        return np.arange(len(labels))
    return stratified_split(labels, n, seed)[1]


@dataclass
class Split:
    images: torch.Tensor  # (N, 28, 28) uint8, on the training device
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split  # only for the final report: never used to choose anything


EVAL_SHARE = 0.25  # a --limit run's validation and test images, as a share of its training images


def load_splits(
    data_dir=None,
    val_size: int = 6000,
    seed: int = 0,
    limit: int | None = None,
    device: str | torch.device = "cpu",
    allow_download: bool = True,
    dataset: str = "fashion-mnist",
) -> Splits:
    """Train/val from the 60k training images (stratified, seeded); test untouched.

    `limit` keeps a stratified subset of `limit` training images and at most a quarter as many validation
    and test images (EVAL_SHARE), for quick runs: a smoke run proves the whole path, and each of its
    finishing steps (calibration, the detector, the gallery, the test report) then scales with it too.
    """
    raw = load_raw(data_dir, allow_download, dataset)
    train_idx, val_idx = stratified_split(raw.train_labels, val_size, seed)
    test_idx = np.arange(len(raw.test_labels))
    if limit is not None:
        evaluate = max(10, round(limit * EVAL_SHARE))
        train_idx = train_idx[_stratified_subset(raw.train_labels[train_idx], limit, seed)]
        val_idx = val_idx[_stratified_subset(raw.train_labels[val_idx], evaluate, seed)]
        test_idx = _stratified_subset(raw.test_labels, evaluate, seed)

    def make(images, labels, idx):
        return Split(
            torch.from_numpy(images[idx].copy()).to(device), torch.from_numpy(labels[idx].astype(np.int64)).to(device)
        )

    return Splits(
        make(raw.train_images, raw.train_labels, train_idx),
        make(raw.train_images, raw.train_labels, val_idx),
        make(raw.test_images, raw.test_labels, test_idx),
    )


def to_float(images_uint8: torch.Tensor) -> torch.Tensor:
    """(B, 28, 28) uint8 -> (B, 1, 28, 28) float in [0, 1]."""
    return images_uint8.unsqueeze(1).float().div_(255.0)
