import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

# pytest-xdist's workers share the machine's cores: each worker's torch, and the train.py and app.py processes
# it starts, get their share of threads instead of all of them (threads spinning against each other's)
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))

from fmnist.data import DEBIAN_DIR, FILES  # noqa: E402  (torch reads OMP_NUM_THREADS when first imported)

ROOT = Path(__file__).resolve().parents[1]


def write_idx(path: Path, array: np.ndarray, magic: int | None = None, compress: bool = True) -> Path:
    """Write a uint8 array as an IDX file, the format of the Fashion-MNIST files."""
    array = np.asarray(array, dtype=np.uint8)
    magic = magic if magic is not None else (0x0800 | array.ndim)
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    data = header + array.tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def real_data_dir() -> Path | None:
    return DEBIAN_DIR if all((DEBIAN_DIR / n).is_file() for n, _ in FILES.values()) else None


needs_real_data = pytest.mark.skipif(real_data_dir() is None, reason="Debian's dataset-fashion-mnist is not installed")


@pytest.fixture
def tiny_dataset(tmp_path):
    """A folder with four hand-made IDX files of the real names (60 train and 20 test images)."""
    rng = np.random.default_rng(0)
    for key, (name, _) in FILES.items():
        n = 60 if key.startswith("train") else 20
        if key.endswith("images"):
            write_idx(tmp_path / name, rng.integers(0, 256, (n, 28, 28)))
        else:
            write_idx(tmp_path / name, np.arange(n) % 10)
    return tmp_path


def kill_once_saved(proc, state, timeout_s: float = 300) -> None:
    """SIGKILL a training subprocess as soon as it has saved its first training state (a run cut off midway);
    fails if the run ended first."""
    import signal
    import time

    deadline = time.time() + timeout_s
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be interrupted"


def shop_photo(item28: np.ndarray, scale=8, canvas=(400, 300), at=(40, 60)):
    """A Fashion-MNIST item made back into a shop photo: dark on white, bigger, off-centre (RGB PIL image)."""
    from PIL import Image

    item = Image.fromarray(255 - item28).resize((28 * scale, 28 * scale), Image.Resampling.BICUBIC)
    photo = Image.new("L", canvas, 255)
    photo.paste(item, at)
    return photo.convert("RGB")


def block_item(h=20, w=10) -> np.ndarray:
    """A 28x28 item: an h x w block at 200, centred on black."""
    arr = np.zeros((28, 28), np.uint8)
    top, left = (28 - h) // 2, (28 - w) // 2
    arr[top : top + h, left : left + w] = 200
    return arr


# The slowest test files first, longest first (docs/tests.md, from a --durations run), so that the parallel
# workers end together instead of one starting the longest file while the other has nothing left
SLOWEST_FIRST = (
    "test_train_cli.py",
    "test_gpu_plan.py",
    "test_preprocess.py",
    "test_app.py",
    "test_finetune.py",
    "test_checkpoints.py",
    "test_search.py",
    "test_tagging.py",
    "test_photo_data.py",
    "test_tracking.py",
    "test_hub.py",
    "test_browser.py",
)


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: each file keeps its own order
