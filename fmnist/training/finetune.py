"""Fine-tuning a trained model on a shop's checked pictures: an fmnist.dataset folder or a Hub dataset repo.

    python train.py --finetune checkpoints/resnet --photos shop-tags/ --out runs/shop
    python train.py --finetune checkpoints/resnet --photos USER/NAME --out runs/shop --push --repo-id USER/MODEL

The pictures go through the app's own photo pipeline. A share of them (HELD_OUT, stratified, seeded) is held
out; the rest train the model, starting from its weights, each batch mixed with DATA_PER_PHOTO data-set images
per picture so that it does not forget the data set. The finished model is calibrated, saved, reloaded and
reported like any trained model (fmnist.training.finish), into OUT/NAME, with before and after on the held-out
pictures and on the data-set test set in its metrics.json, config.json and the model card.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from fmnist import CLASS_NAMES
from fmnist.checkpoints import store
from fmnist.data import Split, load_splits, stratified_split, to_float
from fmnist.dataset import METADATA, SPLIT
from fmnist.evaluation import metrics
from fmnist.evaluation.reports import record_outputs
from fmnist.photo.cache import DEFAULT_PATH, load_photo_data
from fmnist.training.augment import AugmentConfig, augment
from fmnist.training.config import TrainConfig
from fmnist.training.environment import resolve_device
from fmnist.training.finish import finish
from fmnist.training.loader import mixed_in

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]  # a recorded --photo-data path is relative to the repository

HELD_OUT = 0.3  # of the checked pictures, kept out of training to judge before and after
# The recipe, chosen on validation items drawn by a held-out renderer (python -m lab.loop_recipe): the data-set
# part replays the model's own training (its augmentation and share of rendered photos), the batch-norm statistics
# stay as trained, and the result is averaged with the model it started from (WiSE-FT, Wortsman et al. 2022).
# Of nine recipes it alone gained on the check pictures (+1.2 points) without losing on the data set's own.
EPOCHS = 16  # passes over the checked training pictures
LR = 1e-4  # AdamW, cosine to zero: a thirtieth of a full run's peak, so that the model moves, not restarts
DATA_PER_PHOTO = 3  # data-set training images in each batch per checked picture: what keeps it from forgetting
WISE = 0.5  # the fine-tuned weights' share in the average with the starting ones
BATCH = 64
WATCH_VAL = 1000  # validation images scored after each epoch for the curves (all of them once, at the end)
TEST_DROP_LIMIT = 0.005  # a fall of the data-set test accuracy beyond this is said loudly and blocks --push


class FinetuneError(ValueError):
    """Pictures or a checkpoint that cannot be fine-tuned on, with what to do."""


def dataset_folder(source: str) -> Path:
    """A local dataset folder (fmnist.dataset build), or a Hub dataset repo's files (USER/NAME)."""
    if Path(source).is_dir():
        return Path(source)
    if source.count("/") != 1:
        raise FinetuneError(f"--photos {source}: no such folder, and not a Hub dataset id (USER/NAME)")
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(repo_id=source, repo_type="dataset"))


def read_dataset(folder: Path) -> tuple[list[Path], np.ndarray]:
    """The pictures and their class indices, from train/metadata.csv (file_name, label), or a metadata.csv beside
    the pictures at the top (an image folder laid out without a split folder)."""
    meta = next((m for m in (folder / SPLIT / METADATA, folder / METADATA) if m.is_file()), None)
    if meta is None:
        raise FinetuneError(f"{folder} has no {SPLIT}/{METADATA}: build it with python -m fmnist.dataset build")
    with open(meta, newline="") as f:
        rows = list(csv.DictReader(f))
    unknown = sorted({r["label"] for r in rows} - set(CLASS_NAMES))
    if unknown:
        raise FinetuneError(f"{meta}: labels that are not classes: {', '.join(unknown)}")
    return [meta.parent / r["file_name"] for r in rows], np.array([CLASS_NAMES.index(r["label"]) for r in rows])


def _pixels(path: Path) -> np.ndarray:
    from fmnist.photo import preprocess

    return preprocess(path).pixels


def through_pipeline(paths: list[Path], workers: int = 2) -> np.ndarray:
    """(N, 28, 28) uint8: each picture as the app turns it into the model's input."""
    with ProcessPoolExecutor(workers) as pool:
        return np.stack(list(tqdm(pool.map(_pixels, paths, chunksize=4), total=len(paths), desc="pictures")))


def accuracy(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    logits = metrics.predict_logits(model, images)
    return float((logits.argmax(1) == labels.cpu()).float().mean())


def tune(
    model: torch.nn.Module,
    mine: Split,
    splits,
    aug,
    epochs: int,
    lr: float,
    data_per_photo: int,
    cfg: TrainConfig,
    mix: Split | None = None,
    mix_share: float = 0.0,
    freeze_norms: bool = False,
) -> list[dict]:
    """Train model in place on the checked pictures, each pass mixed with data_per_photo data-set training images
    per picture, of which a mix_share are rendered photos from mix (the photo data the model was trained with).
    With freeze_norms, the batch-norm layers keep the statistics the model was trained with.
    -> the per-epoch history (losses, accuracies, validation on WATCH_VAL images)."""
    dev = mine.images.device
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    per_epoch = -(-len(mine) * (1 + data_per_photo) // BATCH)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * per_epoch)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed)
    history, start = [], time.perf_counter()
    for epoch in tqdm(range(1, epochs + 1), desc="fine-tuning"):
        model.train()
        if freeze_norms:
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        data = torch.randint(0, len(splits.train), (len(mine) * data_per_photo,), device=dev, generator=gen)
        images, targets = splits.train.images[data], splits.train.labels[data]
        if mix is not None and mix_share > 0:
            images, targets = mixed_in(images, targets, mix, mix_share, gen)
        images, targets = torch.cat([mine.images, images]), torch.cat([mine.labels, targets])
        order = torch.randperm(len(targets), device=dev, generator=gen)
        seen, loss_sum, right = 0, 0.0, 0
        for i in range(0, len(order), BATCH):
            idx = order[i : i + BATCH]
            x = augment(to_float(images[idx]), aug, gen)
            logits = model(x)
            loss = F.cross_entropy(logits, targets[idx], label_smoothing=cfg.label_smoothing)
            seen, loss_sum = seen + len(idx), loss_sum + float(loss.detach()) * len(idx)
            right += int((logits.argmax(1) == targets[idx]).sum())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        val_logits = metrics.predict_logits(model, splits.val.images[:WATCH_VAL])
        val_labels = splits.val.labels[:WATCH_VAL].cpu()
        val_loss = float(F.cross_entropy(val_logits, val_labels))
        val_acc = float((val_logits.argmax(1) == val_labels).float().mean())
        history.append(
            {
                "epoch": epoch,
                "train_loss": loss_sum / seen,
                "train_acc": right / seen,
                "val_loss": val_loss,
                "val_acc": val_acc,
                "lr_end": sched.get_last_lr()[0],
                "seconds": time.perf_counter() - start - sum(h["seconds"] for h in history),
            }
        )
    return history


def averaged(tuned: dict, started: dict, share: float) -> dict:
    """share of the fine-tuned weights plus the rest of the starting ones (integer buffers as fine-tuned)."""
    return {k: share * v + (1 - share) * started[k] if v.is_floating_point() else v for k, v in tuned.items()}


def own_recipe(cfg: TrainConfig, name: str, train_config: dict, dev) -> tuple[AugmentConfig, Split | None, str | None]:
    """The augmentation the model was trained with and its rendered photos, with the file they came from: what the
    data-set part of each batch replays. A checkpoint without them gets the registry's augmentation and no photos.
    Where the model's own photo file is gone (a photo data the pipeline has since outgrown), the repository's
    (drawn the same way by today's pipeline, as the corrected pictures are) is replayed in its place."""
    aug = train_config.get("augment")
    aug = AugmentConfig(**aug) if aug else dataclasses.replace(cfg, models=[name]).augment(name)
    path = train_config.get("photo_data")
    if not path or not train_config.get("photo_share"):
        return aug, None, None
    found = next((p for p in (Path(path), ROOT / path) if p.is_file()), None)
    if found is None and DEFAULT_PATH.is_file():
        log.warning("the model's photo data %s is not here: the fine-tune replays %s", path, DEFAULT_PATH.name)
        found = DEFAULT_PATH
    if found is None:
        log.warning("the model's photo data %s is not here: the fine-tune replays the data set alone", path)
        return aug, None, None
    shown = found.resolve()
    shown = shown.relative_to(ROOT) if shown.is_relative_to(ROOT) else shown
    return aug, load_photo_data(found, dev).train, str(shown)


def finetune(cfg: TrainConfig, checkpoint: str | Path, photos: str) -> dict:
    """Fine-tune the model in checkpoint on the pictures of photos into cfg.out_dir/NAME; returns its report row
    with "finetune": before and after on the held-out pictures and the data-set test set."""
    checkpoint = Path(checkpoint)
    if not (checkpoint / store.CONFIG_NAME).is_file():
        raise FinetuneError(f"--finetune {checkpoint}: not a checkpoint folder (no {store.CONFIG_NAME})")
    if (store.is_bundled(cfg.out_dir) or store.inside_bundled(cfg.out_dir)) and not cfg.force:
        raise FinetuneError(
            f"--out {cfg.out_dir} is the bundled checkpoints/: a fine-tuned model goes elsewhere; to adopt it "
            "there, give --force"
        )
    dev = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    model, config = store.load_folder(checkpoint, device=dev)
    name = config["architecture"]
    paths, labels = read_dataset(dataset_folder(photos))
    if len(labels) < 10:
        raise FinetuneError(f"--photos {photos}: {len(labels)} pictures; fine-tuning needs at least 10")
    pixels = through_pipeline(paths)
    train_idx, held_idx = stratified_split(labels, max(len(CLASS_NAMES), round(HELD_OUT * len(labels))), cfg.seed)
    tc = config.get("train_config", {})
    splits = load_splits(cfg.data_dir, tc.get("val_size", 6000), config.get("seed", 0), cfg.limit, device=dev)
    held = Split(torch.from_numpy(pixels[held_idx]).to(dev), torch.from_numpy(labels[held_idx]).to(dev))
    mine = Split(torch.from_numpy(pixels[train_idx]).to(dev), torch.from_numpy(labels[train_idx]).to(dev))
    before = {
        "held_out": accuracy(model, held.images, held.labels),
        "test": accuracy(model, splits.test.images, splits.test.labels),
    }
    log.info("before: held-out pictures %.4f, data-set test %.4f", before["held_out"], before["test"])

    epochs = cfg.epochs or EPOCHS
    lr = cfg.lr or LR
    aug, mix, replayed = own_recipe(cfg, name, tc, dev)
    start = time.perf_counter()
    started = {k: v.clone() for k, v in model.state_dict().items()}
    share = tc.get("photo_share", 0.0)
    history = tune(model, mine, splits, aug, epochs, lr, DATA_PER_PHOTO, cfg, mix, share, freeze_norms=True)
    model.load_state_dict(averaged(model.state_dict(), started, WISE))
    seconds = time.perf_counter() - start
    run = {
        "best_val_loss": min(h["val_loss"] for h in history),
        "best_epoch": epochs,
        "epoch": epochs,
        "stopped_early": False,
        "train_seconds": seconds,
        "history": history,
    }
    cfg = dataclasses.replace(cfg, models=[name], epochs=epochs, lr=lr)
    staged = cfg.out_dir / ".partial" / name
    staged.mkdir(parents=True, exist_ok=True)
    init = f"fine-tuned from {checkpoint}"
    row = finish(name, cfg, model, config.get("model_args", {}), init, splits, run, staged, dev, resolved={})
    saved, _ = store.load_folder(staged, device=dev)
    after = {"held_out": accuracy(saved, held.images, held.labels), "test": row["test_acc"]}
    report = {
        "from": str(checkpoint),
        "dataset": photos,
        "pictures": len(labels),
        "held_out": len(held_idx),
        "trained_on": len(train_idx),
        "data_per_picture": DATA_PER_PHOTO,
        "epochs": epochs,
        "lr": lr,
        "replayed_photo_data": replayed,
        "averaged_with_start": WISE,
        "seconds": seconds,
        "before": before,
        "after": after,
        "test_drop": before["test"] - after["test"],
    }
    command = f"python train.py --finetune {checkpoint} --photos {photos} --out {cfg.out}"
    store.atomic_write_json(
        staged / store.CONFIG_NAME, store.read_config(staged) | {"finetune": report, "command": command}
    )
    metrics_json = json.loads((staged / store.METRICS_NAME).read_text())
    store.atomic_write_json(staged / store.METRICS_NAME, metrics_json | {"finetune": report})
    store.publish_folder(staged, cfg.out_dir / name)
    record_outputs(cfg.out_dir)
    return row | {"finetune": report}
