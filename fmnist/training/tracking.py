"""Experiment tracking with trackio (`train.py --track`): curves to watch live and runs to compare.

trackio is local-first: it logs to SQLite under $TRACKIO_DIR (default: the Hugging Face cache,
~/.cache/huggingface/trackio), `trackio show --project fmnist` opens its Gradio dashboard, and nothing
leaves the machine unless `--track-space USER/NAME` asks it to sync to a Space.

- One trackio run per model; every model of one train.py call goes into one project (--track-project).
- Per epoch (the step): train and validation loss and accuracy, the learning rate, the epoch's seconds and
  images per second. At the end: the test metrics, the calibration temperature and ECE, and the confusion
  matrix as an image.
- Only rank 0 of a torchrun job logs.
- --resume continues the same run: its name is kept in the training state, and only the epochs trackio does
  not have yet are logged (those finished after the last logged step), so no epoch is logged twice.
- A search logs each Optuna trial as a run of the study's group, its parameters as config; a pruned trial
  is marked (pruned = 1 at the step it stopped).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

EPOCH_KEYS = ("train_loss", "train_acc", "val_loss", "val_acc")


def _require_trackio():
    try:
        import trackio
    except ImportError:
        raise RuntimeError("--track needs trackio: pip install -r requirements.txt") from None
    return trackio


def new_run_name(model: str) -> str:
    return f"{model}-{time.strftime('%Y%m%d-%H%M%S')}"


class TrackedRun:
    """One trackio run, logged at epoch steps; `epoch` skips steps the run already holds."""

    def __init__(
        self,
        project: str,
        name: str,
        config: dict,
        space: str | None = None,
        group: str | None = None,
        resume: bool = False,
    ):
        trackio = _require_trackio()
        from trackio.sqlite_storage import SQLiteStorage

        self.trackio, self.project, self.name = trackio, project, name
        self.last_step = SQLiteStorage.get_last_step(project, name) if resume else None
        if resume and self.last_step is None:
            log.warning(
                "--resume: the tracked run %r is not in trackio project %r (another TRACKIO_DIR, or deleted);"
                " a new run of that name gets the epochs so far from the saved training state",
                name,
                project,
            )
        self.run = trackio.init(
            project=project,
            name=name,
            config=config,
            space_id=space,
            group=group,
            resume="allow" if resume else "never",
            embed=False,
            auto_log_cpu=False,
            auto_log_gpu=False,
        )

    def epoch(self, row: dict, train_images: int) -> None:
        """Log one epoch's row (training.fit's history row) at step = its epoch, unless already logged."""
        step = int(row["epoch"])
        if self.last_step is not None and step <= self.last_step:
            return
        values = {k: float(row[k]) for k in EPOCH_KEYS}
        values |= {
            "lr": float(row["lr_end"]),
            "epoch_seconds": float(row["seconds"]),
            "images_per_s": train_images / max(float(row["seconds"]), 1e-9),
        }
        self.trackio.log(values, step=step)
        self.last_step = step

    def final(self, folder: Path, report: dict) -> None:
        """The test metrics, calibration and the confusion matrix, one step after the last epoch."""
        test = report["test"]
        values = {
            f"test/{k}": float(test[k])
            for k in ("accuracy", "macro_f1", "mcc", "log_loss", "ece")
            if isinstance(test.get(k), (int, float))
        }
        values |= {
            "calibration/temperature": float(report["temperature"]),
            "calibration/val_ece_before": float(report["val"]["ece_before"]),
            "calibration/val_ece_after": float(report["val"]["ece_after"]),
            "calibration/test_ece_before": float(report["test_ece_before_temperature"]),
        }
        matrix = Path(folder) / "confusion_matrix.png"
        if matrix.is_file():
            values["confusion_matrix"] = self.trackio.Image(str(matrix), caption="test set, calibrated")
        self.trackio.log(values, step=int(report["epochs_run"]) + 1)

    def mark(self, **values: float) -> None:
        """Trial outcomes (pruned, best validation loss), at the step after the last logged one."""
        self.trackio.log({k: float(v) for k, v in values.items()}, step=(self.last_step or 0) + 1)

    def finish(self) -> None:
        self.trackio.finish()
