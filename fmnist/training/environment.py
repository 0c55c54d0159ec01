"""What surrounds a training run: the device it runs on, its place in a torchrun job, the checks made before
its first epoch, and the checkpoints that earlier runs left in an output folder."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from fmnist.checkpoints import store
from fmnist.data import load_splits
from fmnist.models.pretrained import resolve_mobilenet_weights
from fmnist.training.config import TrainConfig


def hardware(dev: torch.device) -> str:
    """What a run ran on, for configs and model cards: the GPU's name, or the CPU model and threads."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {cpu}, {torch.get_num_threads()} threads"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA GPU")
    return dev


@dataclass
class Dist:
    """This process's place in a torchrun job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Dist:
        return cls(
            int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))
        )

    @property
    def main(self) -> bool:
        return self.rank == 0


def preflight(cfg: TrainConfig) -> dict:
    """Check, before the first epoch, everything that could stop the run later: the output folder is
    writable and the MobileNet's weights can be had. (The data is loaded right after, also before any
    training.) Returns what was resolved, for fit()."""
    out = cfg.out_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"--out {out}: cannot write there ({e})") from None
    resolved = {}
    if cfg.photo_data:
        from fmnist.photo.cache import load_photo_data

        photo = load_photo_data(cfg.photo_data)
        resolved |= {"photo_train": photo.train, "photo_digest": photo.digest, "photo_command": photo.meta["command"]}
    if "mobilenet" in cfg.models:
        resolved["mobilenet_weights"] = resolve_mobilenet_weights(cfg)
    return resolved


def existing_checkpoints(cfg: TrainConfig, allow_limit: bool):
    """(name, folder, model, config, splits) of each checkpoint cfg.models names in cfg.out_dir, with the data
    split it was trained on."""
    dev = resolve_device(cfg.device)
    for name in cfg.models:
        folder = cfg.out_dir / name
        model, config = store.load_folder(folder, dev)
        tc = config["train_config"]
        if tc.get("limit") is not None and not allow_limit:
            raise ValueError(f"{folder} was trained on a --limit subset; retrain it instead")
        splits = load_splits(
            cfg.data_dir,
            tc["val_size"],
            config["seed"],
            tc.get("limit"),
            device=dev,
            dataset=config.get("dataset", "fashion-mnist"),
        )
        yield name, folder, model, config, splits
