"""After a model's last epoch: temperature scaling on validation, the not-a-garment detector
(fmnist.notice.fitting), the similar-items features, the save, a reload of the saved files and the test report
on them; and whether the finished model may replace a bundled one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
from pathlib import Path

import torch

from fmnist.checkpoints import store
from fmnist.data import DATASETS, EVAL_SHARE
from fmnist.evaluation import metrics, plots
from fmnist.models.registry import count_parameters
from fmnist.notice.fitting import detector_digits, detector_photos, detector_things, fit_detector
from fmnist.serving import gallery
from fmnist.training.config import RUNS_DIR, TrainConfig, command_for
from fmnist.training.environment import hardware

log = logging.getLogger(__name__)

STATE_NAME = "train_state.pt"


def _bundled_refusal(cfg: TrainConfig, name: str, staged: Path) -> str | None:
    """Why a finished model must not replace the bundled one it would replace (it is worse on validation), or
    None. The refused model is kept in runs/not-adopted/NAME, so that the run is not lost."""
    old_metrics = cfg.out_dir / name / store.METRICS_NAME
    if cfg.force or not store.is_bundled(cfg.out_dir) or not old_metrics.is_file():
        return None
    old = json.loads(old_metrics.read_text())["val"]["accuracy"]
    new = json.loads((staged / store.METRICS_NAME).read_text())["val"]["accuracy"]
    if new >= old:
        return None
    kept = Path(RUNS_DIR) / "not-adopted" / name
    if kept.exists():
        shutil.rmtree(kept)
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(staged), kept)
    return (
        f"{name}: not written into the bundled {cfg.out_dir}/: its validation accuracy {100 * new:.2f} % is "
        f"below the bundled model's {100 * old:.2f} %. The new model is kept in {kept}/; give --force to "
        "replace the bundled one anyway"
    )


def _tracked_config(cfg: TrainConfig, name: str, epochs: int, lr: float) -> dict:
    config = {k: v for k, v in dataclasses.asdict(cfg).items() if not k.startswith("track") and k != "resume"}
    return config | {"model": name, "epochs": epochs, "lr": lr, "augment": dataclasses.asdict(cfg.augment(name))}


def finish(
    name, cfg, model, model_args, init, splits, run, folder, dev, world: int = 1, resolved: dict | None = None
) -> dict:
    """Calibrate on validation, save, reload the saved files and report on the test set."""
    model.eval()
    val_logits = metrics.predict_logits(model, splits.val.images)
    val_labels = splits.val.labels.cpu()
    temperature = metrics.fit_temperature(val_logits, val_labels)
    names = DATASETS[cfg.dataset].class_names
    val_before = metrics.classification_metrics(val_logits, val_labels, class_names=names)
    val_after = metrics.classification_metrics(val_logits, val_labels, temperature, names)

    spec = DATASETS[cfg.dataset]
    dtype = getattr(torch, cfg.weights_dtype)
    train_cfg = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("resume",)}
    train_cfg["augment"] = dataclasses.asdict(cfg.augment(name))  # the values in force, defaults resolved
    config = store.save_pretrained(
        folder,
        model,
        name,
        model_args,
        dtype=dtype,
        class_names=spec.class_names,
        extra_config={
            "dataset": cfg.dataset,
            "initialization": init,
            "pretrained": name == "mobilenet" and not cfg.no_pretrained,
            "temperature": temperature,
            "seed": cfg.seed,
            "parameters": count_parameters(model),
            "device": hardware(dev) + (f" x {world} processes (DistributedDataParallel)" if world > 1 else ""),
            "world_size": world,
            "train_config": train_cfg,
            "command": command_for(train_cfg, name),
            "photo_data": {
                "sha256": resolved.get("photo_digest"),
                "command": resolved.get("photo_command"),
                "pictures": len(resolved["photo_train"]),
            }
            if (resolved or {}).get("photo_train") is not None
            else None,
            # where the run's curves are (fmnist.training.tracking); the model card links a project synced to a Space
            "tracking": {"project": cfg.track_project, "run": run.get("track_name"), "space": cfg.track_space}
            if cfg.track
            else None,
        },
    )

    # The report is taken on the files as saved, so that the recorded numbers are the ones a user gets.
    saved_model, _ = store.load_folder(folder, device=dev)
    # a --limit run (a smoke test) fits on the data set alone unless it names --photo-data
    photo = (
        detector_photos(cfg.photo_data)
        if cfg.dataset == "fashion-mnist" and (cfg.limit is None or cfg.photo_data)
        else None
    )
    config["notice_threshold"] = fit_detector(
        saved_model,
        splits,
        folder,
        len(spec.class_names),
        resolved,
        photo=photo,
        things=detector_things() if photo is not None else None,
        digits=detector_digits() if photo is not None else None,
    )
    store.atomic_write_json(folder / store.CONFIG_NAME, config)
    # similar items: the gallery of training images beside the checkpoints, this model's features in its folder
    # (a --limit run's gallery is a quarter of its training images, as its validation and test sets are)
    size = gallery.GALLERY_SIZE if cfg.limit is None else max(10, round(len(splits.train) * EVAL_SHARE))
    gallery.write_features(
        folder,
        saved_model,
        gallery.ensure_gallery(cfg.out_dir, splits.train.images, splits.train.labels, cfg.seed, size),
    )
    test_logits = metrics.predict_logits(saved_model, splits.test.images)
    test_labels = splits.test.labels.cpu()
    test = metrics.classification_metrics(test_logits, test_labels, temperature, names)
    test_uncal = metrics.classification_metrics(test_logits, test_labels, class_names=names)
    report = {
        "model": name,
        "dataset": cfg.dataset,
        "initialization": init,
        "test": test,
        "test_ece_before_temperature": test_uncal["ece"],
        "test_log_loss_before_temperature": test_uncal["log_loss"],
        "val": {
            "accuracy": val_after["accuracy"],
            "loss_best": run["best_val_loss"],
            "ece_before": val_before["ece"],
            "ece_after": val_after["ece"],
            "log_loss_before": val_before["log_loss"],
            "log_loss_after": val_after["log_loss"],
        },
        "temperature": temperature,
        "best_epoch": run["best_epoch"],
        "epochs_run": run["epoch"],
        "stopped_early": run["stopped_early"],
        "train_seconds": run["train_seconds"],
        "seconds_per_epoch": run["train_seconds"] / max(1, len(run["history"])),
        "history": run["history"],
        "split": {
            "train": len(splits.train),
            "val": len(splits.val),
            "test": len(splits.test),
            "seed": cfg.seed,
            "limit": cfg.limit,
        },
        "device": config["device"],
        "parameters": config["parameters"],
    }
    preds = test_logits.argmax(1).numpy()
    report["plots"] = plots.write_all(
        folder,
        test,
        run["history"],
        splits.test.images.cpu().numpy(),
        test_labels.numpy(),
        preds,
        name,
        cfg.seed,
        spec.class_names,
    )
    store.atomic_write_json(folder / store.METRICS_NAME, report)
    (folder / STATE_NAME).unlink(missing_ok=True)  # the run is complete; the folder is what travels
    return store.summary_row(report)
