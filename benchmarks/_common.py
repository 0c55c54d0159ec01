"""Shared bits of the benchmark scripts: hardware description and result files. The benchmarks are modules of
this package, run from the repository root: python -m benchmarks.NAME [flags]."""

import json
import platform
import sys
import time
from pathlib import Path

import torch

from fmnist.training.environment import hardware

ROOT = Path(__file__).resolve().parents[1]

RESULTS = Path(__file__).resolve().parent / "results"


def device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def command() -> str:
    """The command line that ran this benchmark, as a user types it: python -m benchmarks.NAME [flags]."""
    import __main__

    spec = getattr(__main__, "__spec__", None)
    head = f"python -m {spec.name}" if spec is not None else f"python {sys.argv[0]}"
    return " ".join([head, *sys.argv[1:]])


def record(
    name: str,
    rows: list[dict],
    dev: torch.device,
    extra: dict | None = None,
    folder: Path = RESULTS,
    row_per_line: bool = False,
) -> Path:
    """Write rows with the hardware and the command that produced them to FOLDER/NAME-<device>.json (the
    benchmarks' results/ unless told: the lab keeps its own), each float to six significant digits. With
    row_per_line, the rows' keys are written once under "columns" and each row as one line of values."""
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}-{dev.type}.json"
    payload = {
        "command": command(),
        "hardware": hardware(dev),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
        **(extra or {}),
    }
    payload = _six_digits(payload)
    if row_per_line:  # many small rows of the same keys: "columns" once, then one line of values per row
        rounded = payload["rows"]
        payload |= {"rows": [list(r.values()) for r in rounded], "columns": list(rounded[0]) if rounded else []}
    text = json.dumps(payload, indent=2)
    if row_per_line:
        values = payload["rows"]
        text = text.replace(json.dumps(values, indent=2).replace("\n", "\n  "), _one_per_line(values), 1)
    path.write_text(text + "\n")
    return path


def _six_digits(value):
    """value with every float in it to six significant digits: what a measure of 300 or 10,000 items can say."""
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _six_digits(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_six_digits(v) for v in value]
    return value


def _one_per_line(values: list[list]) -> str:
    return "[\n" + ",\n".join("    " + json.dumps(v, separators=(",", ":")) for v in values) + "\n  ]"


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()
