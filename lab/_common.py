"""What the lab's scripts share with the benchmarks: the repository root and a result file with the hardware and
the command that produced it, written to lab/results/NAME-<device>.json."""

from pathlib import Path

import torch

from benchmarks import _common

ROOT = _common.ROOT
RESULTS = Path(__file__).resolve().parent / "results"


def record(name: str, rows: list[dict], dev: torch.device, extra: dict | None = None, **kwargs) -> Path:
    return _common.record(name, rows, dev, extra, folder=RESULTS, **kwargs)
