"""Training: the epoch loop with early stopping on validation loss, an atomic resumable state after every
epoch, then temperature scaling, the not-a-garment detector (fmnist.notice.fitting) and the final test report.

A run never leaves a model folder half-replaced: each model trains in OUT/.partial/NAME, and only a
finished, re-evaluated folder takes the place of OUT/NAME; results.json and the model card are then
rebuilt from the folders. Everything that could stop a run (data, output folder, the MobileNet's
ImageNet weights) is checked before the first epoch.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from fmnist.checkpoints import store
from fmnist.data import Splits, load_splits
from fmnist.evaluation import metrics
from fmnist.evaluation.reports import record_outputs
from fmnist.models.pretrained import make_model
from fmnist.models.registry import REGISTRY, count_parameters
from fmnist.training import tracking
from fmnist.training.config import TrainConfig
from fmnist.training.environment import Dist, preflight, resolve_device
from fmnist.training.finish import STATE_NAME, _bundled_refusal, _tracked_config, finish
from fmnist.training.loader import DeviceLoader

log = logging.getLogger(__name__)


def _sync_buffers(model: torch.nn.Module, dist_: Dist) -> None:
    """Give every rank rank 0's BatchNorm statistics, so that all ranks validate the same model and
    take the same early-stopping decisions."""
    if dist_.world > 1:
        for b in model.buffers():
            dist.broadcast(b, 0)


def _optimizer(model: torch.nn.Module, cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]  # biases and norm scales
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=lr)


def _scheduler(opt, cfg: TrainConfig, lr: float, total_steps: int):
    # one-cycle needs a few steps for its warm-up and decay; a run of a handful of steps (a tiny --limit
    # with a large batch) gets the cosine schedule instead of a division by zero inside OneCycleLR
    if cfg.schedule == "onecycle" and total_steps >= 8:
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=0.25)
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)


def train_one_epoch(
    model, loader, opt, sched, cfg: TrainConfig, dev: torch.device, bar: tqdm, dist_: Dist = Dist()
) -> dict:
    model.train()
    cuda = dev.type == "cuda"
    loss_sum = torch.zeros((), device=dev)  # summed on the device: no host sync per step
    correct = torch.zeros((), device=dev, dtype=torch.long)
    seen = 0
    for step, (x, y) in enumerate(loader):
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        loss_sum += loss.detach() * len(y)
        correct += (logits.argmax(1) == y).sum()
        seen += len(y)
        bar.update(1)
        if step % 50 == 49 or step == len(loader) - 1:  # a sync only when the bar is redrawn
            bar.set_postfix(loss=f"{loss_sum.item() / seen:.4f}", acc=f"{correct.item() / seen:.4f}")
    if dist_.world > 1:  # the whole job's averages, not this rank's
        totals = torch.stack([loss_sum, correct.to(loss_sum.dtype), torch.tensor(float(seen), device=dev)])
        dist.all_reduce(totals)
        loss_sum, correct, seen = totals[0], totals[1], totals[2].item()
    return {"train_loss": loss_sum.item() / seen, "train_acc": correct.item() / seen}


def _val_metrics(model, split) -> dict:
    logits = metrics.predict_logits(model, split.images)
    labels = split.labels.cpu()
    return {
        "val_loss": F.cross_entropy(logits, labels).item(),
        "val_acc": (logits.argmax(1) == labels).float().mean().item(),
    }


def _save_state(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    store.atomic_write_bytes(path, buf.getvalue())


def _run_signature(name: str, cfg: TrainConfig, epochs: int, lr: float, resolved: dict | None = None) -> dict:
    """What must match for --resume to continue a run rather than start a different one."""
    keep = (
        "dataset",
        "batch_size",
        "weight_decay",
        "optimizer",
        "schedule",
        "label_smoothing",
        "seed",
        "val_size",
        "limit",
        "pretrained_file",
        "no_pretrained",
        "photo_share",
    )
    return {
        "model": name,
        "epochs": epochs,
        "lr": lr,
        "model_args": cfg.model_args.get(name, {}),
        "photo_data": (resolved or {}).get("photo_digest"),
        "augment": dataclasses.asdict(cfg.augment(name)),
        **{k: getattr(cfg, k) for k in keep},
    }


DROPPED_KNOBS = ("print_faint", "bend_p", "flat_p")  # augmentations tried and not adopted (lab/README.md)


def _dropped_knobs(saved: dict) -> str:
    """The dropped augmentations a saved run used, as flags ("--bend-p 0.3"); a saved signature that has them
    off (print_faint was always written, at 0) forgets them, so that run still resumes."""
    augment = saved.get("augment", {})
    used = [f"--{k.replace('_', '-')} {augment[k]}" for k in DROPPED_KNOBS if augment.get(k)]
    for k in DROPPED_KNOBS:
        augment.pop(k, None)
    return ", ".join(used)


def staging_folder(cfg: TrainConfig, name: str) -> Path:
    return cfg.out_dir / store.STAGING_DIR / name


def fit(
    name: str,
    cfg: TrainConfig,
    splits: Splits,
    dev: torch.device,
    dist_: Dist = Dist(),
    resolved: dict | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    report: bool = True,
    tracker: tracking.TrackedRun | None = None,
) -> dict | None:
    """Train one model. With report (the default), calibrate, fit the detector, report on the test set and
    put the finished folder in place; returns the results-table row (on rank 0; other ranks of a torchrun
    job return None). Without report (a hyperparameter search), the test set is never touched and the
    return value is the run: history and best validation loss. on_epoch sees each epoch's row; it may
    raise to stop the run (Optuna's pruning does). With cfg.track, rank 0 logs the run to trackio
    (fmnist.training.tracking); a search passes its trial's own tracker instead."""
    defaults = REGISTRY[name][1]
    epochs, lr = cfg.epochs or defaults["epochs"], cfg.lr or defaults["lr"]
    folder = staging_folder(cfg, name)
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / STATE_NAME
    signature = _run_signature(name, cfg, epochs, lr, resolved)

    torch.manual_seed(cfg.seed)
    model, model_args, init = make_model(name, cfg, (resolved or {}).get("mobilenet_weights"))
    model.to(dev)
    if dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
    train_model = model
    if dist_.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    train_model = torch.compile(train_model) if cfg.compile else train_model
    per_rank_batch = max(1, cfg.batch_size // dist_.world)  # --batch-size is the global batch
    loader = DeviceLoader(
        splits.train,
        per_rank_batch,
        shuffle=True,
        augment_cfg=cfg.augment(name),
        seed=cfg.seed,
        drop_last=len(splits.train) // dist_.world > per_rank_batch,
        rank=dist_.rank,
        world=dist_.world,
        mix=(resolved or {}).get("photo_train"),
        mix_share=cfg.photo_share,
    )
    opt = _optimizer(model, cfg, lr)
    sched = _scheduler(opt, cfg, lr, epochs * len(loader))
    run = {
        "epoch": 0,
        "history": [],
        "best_val_loss": float("inf"),
        "best_epoch": 0,
        "bad_epochs": 0,
        "best_state": None,
        "train_seconds": 0.0,
        "stopped_early": False,
    }

    if cfg.resume and state_path.is_file():
        saved = torch.load(state_path, map_location=dev, weights_only=True)
        dropped = _dropped_knobs(saved["signature"])
        if dropped:
            raise ValueError(
                f"--resume: {state_path} was written by a run with {dropped}, an augmentation that was tried and "
                "dropped (lab/README.md); this version cannot continue it. Delete the file to start again, or "
                "resume with the commit that wrote it"
            )
        if saved["signature"] != json.loads(json.dumps(signature)):
            raise ValueError(
                f"--resume: {state_path} was written by a run with other settings "
                f"({saved['signature']}); delete it or rerun with the same flags"
            )
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        run = saved["run"]
        log.info("%s: resuming after epoch %d of %d", name, run["epoch"], epochs)

    log.info(
        "%s: %d parameters, %d epochs, lr %g, on %s, init: %s, augmentation: %s",
        name,
        count_parameters(model),
        epochs,
        lr,
        dev,
        init,
        cfg.augment(name),
    )
    own_tracker = tracker is None and cfg.track and report and dist_.main
    if own_tracker:
        resumed = "track_name" in run
        run.setdefault("track_name", tracking.new_run_name(name))  # kept in the training state for --resume
        tracker = tracking.TrackedRun(
            cfg.track_project,
            run["track_name"],
            _tracked_config(cfg, name, epochs, lr),
            space=cfg.track_space,
            resume=resumed,
        )
        for row in run["history"]:  # epochs the state holds and trackio may not (a run killed in between)
            tracker.epoch(row, len(splits.train))
    if tracker is not None and not dist_.main:
        tracker = None  # only rank 0 logs
    try:
        while run["epoch"] < epochs and not run["stopped_early"]:
            epoch = run["epoch"] + 1
            # dropout draws depend on (epoch, rank) alone: an exact resume
            torch.manual_seed((cfg.seed * 1_000_003 + epoch) * 1_009 + dist_.rank)
            loader.set_epoch(epoch)
            t0 = time.perf_counter()
            with tqdm(
                total=len(loader),
                desc=f"{name} {epoch}/{epochs}",
                leave=True,
                dynamic_ncols=True,
                disable=not dist_.main,
            ) as bar:
                row = train_one_epoch(train_model, loader, opt, sched, cfg, dev, bar, dist_)
                _sync_buffers(model, dist_)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - t0
                row |= _val_metrics(model, splits.val)
                bar.set_postfix(
                    loss=f"{row['train_loss']:.4f}",
                    acc=f"{row['train_acc']:.4f}",
                    val_loss=f"{row['val_loss']:.4f}",
                    val_acc=f"{row['val_acc']:.4f}",
                )
            row |= {"epoch": epoch, "seconds": seconds, "lr_end": sched.get_last_lr()[0]}
            run["history"].append(row)
            run["train_seconds"] += seconds
            if row["val_loss"] < run["best_val_loss"] - 1e-4:
                run |= {
                    "best_val_loss": row["val_loss"],
                    "best_epoch": epoch,
                    "bad_epochs": 0,
                    "best_state": copy.deepcopy(model.state_dict()),
                }
            else:
                run["bad_epochs"] += 1
                run["stopped_early"] = run["bad_epochs"] >= cfg.patience
            run["epoch"] = epoch
            if dist_.main:
                _save_state(
                    state_path,
                    {
                        "signature": signature,
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "scheduler": sched.state_dict(),
                        "run": run,
                    },
                )
            if tracker is not None:
                tracker.epoch(row, len(splits.train))
            if on_epoch is not None:
                on_epoch(row)
        if run["stopped_early"]:
            log.info("%s: early stop after epoch %d; best epoch %d", name, run["epoch"], run["best_epoch"])

        model.load_state_dict(run["best_state"])
        if not report:
            shutil.rmtree(folder, ignore_errors=True)
            return {
                "history": run["history"],
                "best_val_loss": run["best_val_loss"],
                "best_epoch": run["best_epoch"],
                "best_val_acc": max(h["val_acc"] for h in run["history"]),
            }
        if not dist_.main:
            return None
        row = finish(name, cfg, model, model_args, init, splits, run, folder, dev, dist_.world, resolved)
        refusal = _bundled_refusal(cfg, name, folder)
        if refusal:
            log.error(refusal)
            return {"model": name, "refused": refusal}
        store.publish_folder(folder, cfg.out_dir / name)
        if own_tracker:
            tracker.final(cfg.out_dir / name, json.loads((cfg.out_dir / name / store.METRICS_NAME).read_text()))
        return row
    finally:
        if own_tracker:
            tracker.finish()


def train_all(cfg: TrainConfig) -> list[dict]:
    """Train every model in cfg.models on one data split; return the rows of the results table (a model that
    would have replaced a better bundled one has a row {"model", "refused": why} instead).

    After each model, its finished folder replaces the old one and results.json and the model card are
    rebuilt from the folders, so whatever stops the run later leaves the three consistent."""
    cfg.validate()
    resolved = preflight(cfg)
    dist_ = Dist.from_env()
    dev = resolve_device(cfg.device)
    if dist_.world > 1:  # launched by torchrun: NCCL between GPUs, gloo between CPU processes
        if dev.type == "cuda":
            dev = torch.device("cuda", dist_.local_rank)
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        torch.set_num_threads(max(1, torch.get_num_threads() // dist_.world))
    rows = []
    try:
        splits = load_splits(cfg.data_dir, cfg.val_size, cfg.seed, cfg.limit, device=dev, dataset=cfg.dataset)
        if "photo_train" in resolved:
            photo = resolved["photo_train"]
            resolved["photo_train"] = dataclasses.replace(
                photo, images=photo.images.to(dev), labels=photo.labels.to(dev)
            )
        log.info(
            "%s: %d train / %d val / %d test images on %s (rank %d of %d)",
            cfg.dataset,
            len(splits.train),
            len(splits.val),
            len(splits.test),
            dev,
            dist_.rank,
            dist_.world,
        )
        for name in cfg.models:
            row = fit(name, cfg, splits, dev, dist_, resolved)
            if row is not None:
                rows.append(row)
                if "refused" not in row:
                    record_outputs(cfg.out_dir)
        if dist_.world > 1:
            dist.barrier()  # the other ranks wait while rank 0 writes the report
    finally:
        if dist_.world > 1:  # also after an error, so that the job ends instead of hanging
            dist.destroy_process_group()
    return rows
