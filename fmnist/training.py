"""Training: the epoch loop with early stopping on validation loss, an atomic resumable state after every
epoch, then temperature scaling, the not-a-garment detector (fmnist.detector) and the final test report.

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

from . import checkpoint, gallery, metrics, plots, tracking
from .config import RUNS_DIR, TrainConfig, command_for
from .data import DATASETS, EVAL_SHARE, DeviceLoader, Splits, load_splits
from .detector import detector_photos, detector_things, fit_detector
from .model_init import make_model
from .models import REGISTRY, count_parameters
from .reports import record_outputs
from .runs import Dist, hardware, preflight, resolve_device

log = logging.getLogger(__name__)

STATE_NAME = "train_state.pt"


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
    checkpoint.atomic_write_bytes(path, buf.getvalue())


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
    augment = dataclasses.asdict(cfg.augment(name))
    for late in ("bend_p", "flat_p"):  # off, as in a run saved before the flag existed: that run can still resume
        if not augment[late]:
            del augment[late]
    return {
        "model": name,
        "epochs": epochs,
        "lr": lr,
        "model_args": cfg.model_args.get(name, {}),
        "photo_data": (resolved or {}).get("photo_digest"),
        "augment": augment,
        **{k: getattr(cfg, k) for k in keep},
    }


def staging_folder(cfg: TrainConfig, name: str) -> Path:
    return cfg.out_dir / checkpoint.STAGING_DIR / name


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
    (fmnist.tracking); a search passes its trial's own tracker instead."""
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
        checkpoint.publish_folder(folder, cfg.out_dir / name)
        if own_tracker:
            tracker.final(cfg.out_dir / name, json.loads((cfg.out_dir / name / checkpoint.METRICS_NAME).read_text()))
        return row
    finally:
        if own_tracker:
            tracker.finish()


def _bundled_refusal(cfg: TrainConfig, name: str, staged: Path) -> str | None:
    """Why a finished model must not replace the bundled one it would replace (it is worse on validation), or
    None. The refused model is kept in runs/not-adopted/NAME, so that the run is not lost."""
    old_metrics = cfg.out_dir / name / checkpoint.METRICS_NAME
    if cfg.force or not checkpoint.is_bundled(cfg.out_dir) or not old_metrics.is_file():
        return None
    old = json.loads(old_metrics.read_text())["val"]["accuracy"]
    new = json.loads((staged / checkpoint.METRICS_NAME).read_text())["val"]["accuracy"]
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
    config = checkpoint.save_pretrained(
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
            # where the run's curves are (fmnist.tracking); the model card links a project synced to a Space
            "tracking": {"project": cfg.track_project, "run": run.get("track_name"), "space": cfg.track_space}
            if cfg.track
            else None,
        },
    )

    # The report is taken on the files as saved, so that the recorded numbers are the ones a user gets.
    saved_model, _ = checkpoint.load_folder(folder, device=dev)
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
    )
    checkpoint.atomic_write_json(folder / checkpoint.CONFIG_NAME, config)
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
    checkpoint.atomic_write_json(folder / checkpoint.METRICS_NAME, report)
    (folder / STATE_NAME).unlink(missing_ok=True)  # the run is complete; the folder is what travels
    return checkpoint.summary_row(report)


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
