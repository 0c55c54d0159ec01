"""The checkpoint folder format: one self-describing folder per model, written atomically, read back
without guessing.

A folder holds `model.safetensors` (the weights), `config.json` (architecture, constructor arguments,
class names, normalisation, calibration, notice thresholds, seed, library versions, git commit),
`metrics.json` (the test report), `detector.safetensors` (the statistics of the not-a-garment detector)
and plots. A root folder holds one such folder per model, plus `results.json` and the model card, which
are always rebuilt from the model folders themselves, so that they cannot drift from them.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch

from fmnist import CLASS_NAMES, __version__
from fmnist.models.registry import REGISTRY, FashionModel, build_model

log = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
METRICS_NAME = "metrics.json"
EXPLANATION_NAME = "explanation.json"  # the saliency method the app shows, and its faithfulness (fmnist.explain.maps)
RESULTS_NAME = "results.json"
STAGING_DIR = ".partial"  # unfinished runs live here until their folder is complete
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".pkl", ".ckpt")
FORMAT = "fmnist-checkpoint/1"
BUNDLED = Path(__file__).resolve().parents[2] / "checkpoints"  # what the app serves by default


class CheckpointError(RuntimeError):
    """A checkpoint folder cannot be turned into a model."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file beside path, then rename: a crash never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; checkpoints are meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


def is_bundled(folder: str | Path) -> bool:
    """True for the repository's own checkpoints/ folder, the one the app serves."""
    return Path(folder).resolve() == BUNDLED.resolve()


def inside_bundled(folder: str | Path) -> bool:
    """True for checkpoints/ or any folder inside it, however the path is spelled (`..`, links)."""
    target, bundled = Path(folder).resolve(), BUNDLED.resolve()
    return target == bundled or bundled in target.parents


def publish_folder(staged: Path, final: Path) -> None:
    """Put a finished model folder in place of the old one. The old folder stays whole until the new
    one is complete, and is swapped out by two renames on the same file system."""
    old = staged.with_name(staged.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    if old.exists():
        shutil.rmtree(old)
    try:
        staged.parent.rmdir()  # the staging folder, once nothing else is training in it
    except OSError:
        pass


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).resolve().parent
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> dict:
    import numpy
    import sklearn
    import timm

    return {
        "fmnist": __version__,
        "torch": torch.__version__,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
        "scikit-learn": sklearn.__version__,
    }


def save_pretrained(
    folder: str | Path,
    model: FashionModel,
    architecture: str,
    model_args: dict,
    extra_config: dict | None = None,
    dtype: torch.dtype | None = None,
    class_names: tuple[str, ...] = CLASS_NAMES,
) -> dict:
    """Write the model's weights (safetensors) and a config.json that rebuilds it. Returns the config."""
    folder = Path(folder)
    write_weights(folder, model, architecture, dtype)
    config = {
        "format": FORMAT,
        "architecture": architecture,
        "model_args": model_args,
        "class_names": list(class_names),
        "input_size": [1, 28, 28],
        "input_range": [0.0, 1.0],
        "normalization": {
            "mean": model.normalize.mean,
            "std": model.normalize.std,
            "applied": "inside the model, on pixels scaled to [0, 1]",
        },
        "gradcam_layer": model.gradcam_layer,
        "weights_dtype": str(dtype or torch.float32).removeprefix("torch."),
        "versions": library_versions(),
        "git_commit": git_commit(),
        **(extra_config or {}),
    }
    atomic_write_json(folder / CONFIG_NAME, config)
    return config


def write_weights(folder: Path, model: torch.nn.Module, architecture: str, dtype: torch.dtype | None = None) -> None:
    """model.safetensors: the state dict, floating-point tensors in dtype (None: as they are)."""
    from safetensors.torch import save

    state = {
        k: v.detach().to("cpu", dtype=dtype if (dtype and v.is_floating_point()) else v.dtype).contiguous()
        for k, v in model.state_dict().items()
    }
    atomic_write_bytes(folder / WEIGHTS_NAME, save(state, metadata={"format": "pt", "architecture": architecture}))


def read_config(folder: Path) -> dict:
    path = folder / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{folder} has no {CONFIG_NAME}; it is not an fmnist checkpoint")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON: {e}") from e


def load_folder(folder: str | Path, device: str | torch.device = "cpu") -> tuple[FashionModel, dict]:
    """Rebuild the model a checkpoint folder describes, in eval mode. Refuses rather than guesses."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a folder")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise CheckpointError(
                f"{folder} holds only pickled weights ({', '.join(pickles)}); fmnist loads "
                f"{WEIGHTS_NAME} only, since unpickling can run arbitrary code"
            )
        raise CheckpointError(f"{folder} has no {WEIGHTS_NAME}")
    config = read_config(folder)
    arch = config.get("architecture")
    if arch not in REGISTRY:
        raise CheckpointError(
            f"{folder / CONFIG_NAME} names architecture {arch!r}, which fmnist does not know "
            f"(known: {', '.join(REGISTRY)})"
        )
    try:
        state = load_file(weights)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights} cannot be read: {e}") from e
    try:
        model = build_model(arch, **config.get("model_args", {}))
    except TypeError as e:
        raise CheckpointError(f"{folder / CONFIG_NAME}: model_args do not fit {arch}: {e}") from e
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).splitlines()[0]
        raise CheckpointError(f"{weights} does not fit the {arch} architecture in {CONFIG_NAME}: {first}") from e
    model.float().to(device).eval()
    explanation = folder / EXPLANATION_NAME
    # the method fmnist.explain.maps uses when none is named, chosen by python -m benchmarks.faithfulness
    model.explanation = json.loads(explanation.read_text()) if explanation.is_file() else None
    return model, config


def model_folders(root: str | Path) -> list[Path]:
    """The subfolders of root that hold a checkpoint, best test accuracy first."""
    root = Path(root)
    found = (
        [p for p in sorted(root.iterdir()) if (p / CONFIG_NAME).is_file() and (p / WEIGHTS_NAME).is_file()]
        if root.is_dir()
        else []
    )

    def acc(p):
        m = p / METRICS_NAME
        return json.loads(m.read_text())["test"]["accuracy"] if m.is_file() else -1.0

    return sorted(found, key=acc, reverse=True)


def summary_row(report: dict) -> dict:
    """One row of the results table, from a model's metrics.json."""
    t = report["test"]
    return {
        "model": report["model"],
        "dataset": report.get("dataset", "fashion-mnist"),
        "test_acc": t["accuracy"],
        "macro_f1": t["macro_avg"]["f1-score"],
        "mcc": t["mcc"],
        "log_loss": t["log_loss"],
        "ece_before": report["test_ece_before_temperature"],
        "ece_after": t["ece"],
        "epochs": report["epochs_run"],
        "best_epoch": report["best_epoch"],
        "s_per_epoch": report["seconds_per_epoch"],
        "params": report["parameters"],
        "init": report["initialization"],
    }


def write_results(root: str | Path) -> list[dict]:
    """Rebuild root/results.json from the model folders' own metrics.json files, and return its rows."""
    root = Path(root)
    rows = [
        summary_row(json.loads((f / METRICS_NAME).read_text()))
        for f in model_folders(root)
        if (f / METRICS_NAME).is_file()
    ]
    atomic_write_json(root / RESULTS_NAME, rows)
    return rows
