"""Shared bits of the benchmark scripts: hardware description and result files."""

import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fmnist.runs import hardware  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def record(name: str, rows: list[dict], dev: torch.device, extra: dict | None = None) -> Path:
    """Write rows with the hardware and the command that produced them to results/NAME-<device>.json."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}-{dev.type}.json"
    payload = {"command": "python " + " ".join(sys.argv), "hardware": hardware(dev), "torch": torch.__version__,
               "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"), "rows": rows, **(extra or {})}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()
