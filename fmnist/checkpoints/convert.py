"""Re-store existing checkpoints with smaller weights, kept only where the test accuracy holds.

    python -m fmnist.checkpoints convert --dtype float16 --out checkpoints

For each model folder it writes the weights in the new dtype into a staged copy, reloads that copy as the app
would, and evaluates it on the test and validation splits it was trained with. Where the test accuracy moves by
more than TOLERANCE the folder stays as it was; otherwise metrics.json records the new figures (and the old
accuracy, under "converted"), the gallery features are taken from the converted model, and the folder replaces
the old one whole. A folder whose weights are already in that dtype is left as it is, so its recorded figures
before conversion stay. results.json and the model card are rebuilt from the folders afterwards.
"""

from __future__ import annotations

import json
import logging
import shutil

import torch

from fmnist.checkpoints import store
from fmnist.data import DATASETS
from fmnist.evaluation import metrics, plots
from fmnist.serving import gallery
from fmnist.training.config import TrainConfig
from fmnist.training.environment import existing_checkpoints

log = logging.getLogger(__name__)
TOLERANCE = 0.0005  # of test accuracy: 0.05 points, 5 of the 10,000 test images


def convert_weights(cfg: TrainConfig) -> list[dict]:
    """Convert cfg.models in cfg.out_dir to cfg.weights_dtype; returns a row per model: before, after, kept."""
    from fmnist.evaluation.reports import record_outputs

    dtype, rows = getattr(torch, cfg.weights_dtype), []
    found = gallery.load_gallery(cfg.out_dir)
    rewritten = False
    for name, folder, model, config, splits in existing_checkpoints(cfg, allow_limit=True):
        report = json.loads((folder / store.METRICS_NAME).read_text())
        before, old_dtype = report["test"]["accuracy"], config.get("weights_dtype", "float32")
        if old_dtype == cfg.weights_dtype:  # already stored so: rewriting it would overwrite the recorded history
            rows.append({"model": name, "from": old_dtype, "to": cfg.weights_dtype, "already": True})
            continue
        if found is not None and not rewritten:  # in the current (compressed) layout; the same images and digest
            gallery.save_gallery(cfg.out_dir, found.images, found.labels)
            rewritten = True
        staged = cfg.out_dir / store.STAGING_DIR / name
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(folder, staged)
        store.write_weights(staged, model, name, dtype)
        converted, _ = store.load_folder(staged)
        names, temperature = DATASETS[config.get("dataset", "fashion-mnist")].class_names, config["temperature"]
        test_logits = metrics.predict_logits(converted, splits.test.images)
        test_labels = splits.test.labels.cpu()
        test = metrics.classification_metrics(test_logits, test_labels, temperature, names)
        row = {
            "model": name,
            "from": old_dtype,
            "to": cfg.weights_dtype,
            "test_acc_before": before,
            "test_acc_after": test["accuracy"],
            "bytes_before": (folder / store.WEIGHTS_NAME).stat().st_size,
            "bytes_after": (staged / store.WEIGHTS_NAME).stat().st_size,
        }
        row["kept"] = abs(test["accuracy"] - before) <= TOLERANCE
        rows.append(row)
        if not row["kept"]:
            log.warning(
                "%s: test accuracy %.4f -> %.4f in %s; left in %s",
                name,
                before,
                test["accuracy"],
                cfg.weights_dtype,
                old_dtype,
            )
            shutil.rmtree(staged)
            continue
        uncal = metrics.classification_metrics(test_logits, test_labels, class_names=names)
        val_logits = metrics.predict_logits(converted, splits.val.images)
        val_labels = splits.val.labels.cpu()
        val_before = metrics.classification_metrics(val_logits, val_labels, class_names=names)
        val_after = metrics.classification_metrics(val_logits, val_labels, temperature, names)
        report |= {
            "test": test,
            "test_ece_before_temperature": uncal["ece"],
            "test_log_loss_before_temperature": uncal["log_loss"],
            "converted": {
                "from": old_dtype,
                "to": cfg.weights_dtype,
                "test_accuracy_before": before,
                "val_accuracy_before": report["val"]["accuracy"],
                "git_commit": store.git_commit(),
            },
        }
        report["val"] |= {
            "accuracy": val_after["accuracy"],
            "ece_before": val_before["ece"],
            "ece_after": val_after["ece"],
            "log_loss_before": val_before["log_loss"],
            "log_loss_after": val_after["log_loss"],
        }
        report["plots"] = plots.write_all(
            staged,
            test,
            report["history"],
            splits.test.images.cpu().numpy(),
            test_labels.numpy(),
            test_logits.argmax(1).numpy(),
            name,
            config["seed"],
            names,
        )
        store.atomic_write_json(staged / store.METRICS_NAME, report)
        store.atomic_write_json(staged / store.CONFIG_NAME, config | {"weights_dtype": cfg.weights_dtype})
        if found is not None:
            gallery.write_features(staged, converted, found)
        store.publish_folder(staged, folder)
    record_outputs(cfg.out_dir)
    return rows
