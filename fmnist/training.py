"""Training: one typed config, an epoch loop with early stopping on validation loss, an atomic
resumable state after every epoch, temperature scaling, and the final test report."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import logging
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import hub, metrics, plots
from .data import AugmentConfig, DeviceLoader, Splits, load_splits
from .models import MODEL_NAMES, REGISTRY, build_model, count_parameters

log = logging.getLogger(__name__)

STATE_NAME = "train_state.pt"
OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("onecycle", "cosine")


@dataclass
class TrainConfig:
    """Every field is a train.py flag of the same name (underscores become dashes)."""

    models: list[str] = field(default_factory=lambda: list(MODEL_NAMES))
    epochs: int | None = None  # None: each model's default from the registry
    batch_size: int = 256
    lr: float | None = None  # peak learning rate; None: each model's default
    weight_decay: float = 5e-4
    optimizer: str = "adamw"
    schedule: str = "onecycle"
    label_smoothing: float = 0.1
    patience: int = 5  # early stopping: epochs without a better validation loss
    seed: int = 0
    val_size: int = 6000
    limit: int | None = None
    shift_px: int = 2
    hflip: bool = True
    erase_p: float = 0.0
    model_args: dict = field(default_factory=dict)  # {"mobilenet": {"img_size": 96}, ...}
    pretrained_file: str | None = None
    no_pretrained: bool = False
    out: str = "checkpoints"
    data_dir: str | None = None
    device: str = "auto"
    resume: bool = False
    compile: bool = False
    weights_dtype: str = "float32"  # "float16" halves the files; metrics are taken on the saved weights

    def validate(self) -> None:
        """Raise ValueError with a message a user can act on."""
        unknown = [m for m in self.models if m not in REGISTRY]
        if unknown or not self.models:
            raise ValueError(f"--models: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(MODEL_NAMES)}")
        positive = {"batch_size": self.batch_size, "val_size": self.val_size}
        positive |= {k: v for k, v in (("epochs", self.epochs), ("lr", self.lr), ("limit", self.limit)) if v is not None}
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"--label-smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 <= self.erase_p <= 1:
            raise ValueError(f"--erase-p must be in [0, 1], got {self.erase_p}")
        if self.weight_decay < 0 or self.patience < 1 or self.shift_px < 0:
            raise ValueError("--weight-decay and --shift-px must be >= 0 and --patience >= 1")
        if self.weights_dtype not in ("float32", "float16", "bfloat16"):
            raise ValueError(f"--weights-dtype must be float32, float16 or bfloat16, got {self.weights_dtype!r}")
        bad_args = [m for m in self.model_args if m not in REGISTRY]
        if bad_args:
            raise ValueError(f"--model-args names unknown models: {', '.join(bad_args)}")
        if self.pretrained_file and self.no_pretrained:
            raise ValueError("--pretrained-file and --no-pretrained contradict each other: give one")
        if self.pretrained_file and not Path(self.pretrained_file).is_file():
            raise ValueError(f"--pretrained-file {self.pretrained_file} does not exist")

    def augment(self) -> AugmentConfig:
        return AugmentConfig(shift_px=self.shift_px, hflip=self.hflip, erase_p=self.erase_p)


def hardware(dev: torch.device) -> str:
    """What a run ran on, for configs and model cards: the GPU's name, or the CPU model and threads."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {cpu}, {torch.get_num_threads()} threads"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA GPU")
    return dev


@dataclass
class Dist:
    """This process's place in a torchrun job (rank 0 of 1 without one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Dist":
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))

    @property
    def main(self) -> bool:
        return self.rank == 0


def _sync_buffers(model: torch.nn.Module, dist_: Dist) -> None:
    """Give every rank rank 0's BatchNorm statistics, so that all ranks validate the same model and
    take the same early-stopping decisions."""
    if dist_.world > 1:
        for b in model.buffers():
            dist.broadcast(b, 0)


class PretrainedUnavailable(RuntimeError):
    """ImageNet weights for the transfer model could not be had."""


def _mobilenet_init(cfg: TrainConfig) -> tuple[str | None, str]:
    """Where the MobileNet's weights start from, and how that is described in its config and card."""
    if cfg.pretrained_file:
        return cfg.pretrained_file, f"ImageNet weights from the local file {Path(cfg.pretrained_file).name}"
    if cfg.no_pretrained:
        return None, "random initialisation (--no-pretrained): NOT a transfer model, no ImageNet weights"
    return "hub", "ImageNet weights from the Hugging Face Hub (timm)"


def make_model(name: str, cfg: TrainConfig) -> tuple[torch.nn.Module, dict, str]:
    """The model, the arguments that rebuild it, and a description of its initialisation."""
    args = dict(cfg.model_args.get(name, {}))
    if name != "mobilenet":
        return build_model(name, **args), args, "random initialisation (trained from scratch)"
    source, description = _mobilenet_init(cfg)
    try:
        model = build_model(name, pretrained=source, **args)
    except Exception as e:  # timm raises several kinds (LocalEntryNotFoundError, OSError, HTTP errors)
        if source != "hub":
            raise
        raise PretrainedUnavailable(
            f"ImageNet weights for the MobileNet could not be downloaded ({type(e).__name__}: {e}).\n"
            "Give a local weights file with --pretrained-file PATH, or train from random initialisation with "
            "--no-pretrained (the model is then labelled as not pretrained everywhere)."
        ) from e
    return model, args, description


def _optimizer(model: torch.nn.Module, cfg: TrainConfig, lr: float) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]  # biases and norm scales
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    return torch.optim.AdamW(groups, lr=lr)


def _scheduler(opt, cfg: TrainConfig, lr: float, total_steps: int):
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=0.25)
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)


def train_one_epoch(model, loader, opt, sched, cfg: TrainConfig, dev: torch.device, bar: tqdm,
                    dist_: Dist = Dist()) -> dict:
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
    return {"val_loss": F.cross_entropy(logits, labels).item(),
            "val_acc": (logits.argmax(1) == labels).float().mean().item()}


def _save_state(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    hub.atomic_write_bytes(path, buf.getvalue())


def _run_signature(name: str, cfg: TrainConfig, epochs: int, lr: float) -> dict:
    """What must match for --resume to continue a run rather than start a different one."""
    keep = ("batch_size", "weight_decay", "optimizer", "schedule", "label_smoothing", "seed", "val_size",
            "limit", "shift_px", "hflip", "erase_p", "pretrained_file", "no_pretrained")
    return {"model": name, "epochs": epochs, "lr": lr, "model_args": cfg.model_args.get(name, {}),
            **{k: getattr(cfg, k) for k in keep}}


def fit(name: str, cfg: TrainConfig, splits: Splits, dev: torch.device, dist_: Dist = Dist()) -> dict | None:
    """Train one model and write its checkpoint folder. Returns the summary row for the results table
    (on rank 0; other ranks of a torchrun job return None)."""
    defaults = REGISTRY[name][1]
    epochs, lr = cfg.epochs or defaults["epochs"], cfg.lr or defaults["lr"]
    folder = Path(cfg.out) / name
    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / STATE_NAME
    signature = _run_signature(name, cfg, epochs, lr)

    torch.manual_seed(cfg.seed)
    model, model_args, init = make_model(name, cfg)
    model.to(dev)
    if dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
    train_model = model
    if dist_.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    train_model = torch.compile(train_model) if cfg.compile else train_model
    per_rank_batch = max(1, cfg.batch_size // dist_.world)  # --batch-size is the global batch
    loader = DeviceLoader(splits.train, per_rank_batch, shuffle=True, augment_cfg=cfg.augment(), seed=cfg.seed,
                          drop_last=len(splits.train) // dist_.world > per_rank_batch,
                          rank=dist_.rank, world=dist_.world)
    opt = _optimizer(model, cfg, lr)
    sched = _scheduler(opt, cfg, lr, epochs * len(loader))
    run = {"epoch": 0, "history": [], "best_val_loss": float("inf"), "best_epoch": 0, "bad_epochs": 0,
           "best_state": None, "train_seconds": 0.0, "stopped_early": False}

    if cfg.resume and state_path.is_file():
        saved = torch.load(state_path, map_location=dev, weights_only=True)
        if saved["signature"] != json.loads(json.dumps(signature)):
            raise ValueError(f"--resume: {state_path} was written by a run with other settings "
                             f"({saved['signature']}); delete it or rerun with the same flags")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        run = saved["run"]
        log.info("%s: resuming after epoch %d of %d", name, run["epoch"], epochs)

    log.info("%s: %d parameters, %d epochs, lr %g, on %s, init: %s", name, count_parameters(model), epochs, lr,
             dev, init)
    while run["epoch"] < epochs and not run["stopped_early"]:
        epoch = run["epoch"] + 1
        # dropout draws depend on (epoch, rank) alone: an exact resume
        torch.manual_seed((cfg.seed * 1_000_003 + epoch) * 1_009 + dist_.rank)
        loader.set_epoch(epoch)
        t0 = time.perf_counter()
        with tqdm(total=len(loader), desc=f"{name} {epoch}/{epochs}", leave=True, dynamic_ncols=True,
                  disable=not dist_.main) as bar:
            row = train_one_epoch(train_model, loader, opt, sched, cfg, dev, bar, dist_)
            _sync_buffers(model, dist_)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            row |= _val_metrics(model, splits.val)
            bar.set_postfix(loss=f"{row['train_loss']:.4f}", acc=f"{row['train_acc']:.4f}",
                            val_loss=f"{row['val_loss']:.4f}", val_acc=f"{row['val_acc']:.4f}")
        row |= {"epoch": epoch, "seconds": seconds, "lr_end": sched.get_last_lr()[0]}
        run["history"].append(row)
        run["train_seconds"] += seconds
        if row["val_loss"] < run["best_val_loss"] - 1e-4:
            run |= {"best_val_loss": row["val_loss"], "best_epoch": epoch, "bad_epochs": 0,
                    "best_state": copy.deepcopy(model.state_dict())}
        else:
            run["bad_epochs"] += 1
            run["stopped_early"] = run["bad_epochs"] >= cfg.patience
        run["epoch"] = epoch
        if dist_.main:
            _save_state(state_path, {"signature": signature, "model": model.state_dict(),
                                     "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "run": run})
    if run["stopped_early"]:
        log.info("%s: early stop after epoch %d; best epoch %d", name, run["epoch"], run["best_epoch"])

    model.load_state_dict(run["best_state"])
    if not dist_.main:
        return None
    return finish(name, cfg, model, model_args, init, splits, run, folder, dev, dist_.world)


def finish(name, cfg, model, model_args, init, splits, run, folder, dev, world: int = 1) -> dict:
    """Calibrate on validation, save, reload the saved files and report on the test set."""
    model.eval()
    val_logits = metrics.predict_logits(model, splits.val.images)
    val_labels = splits.val.labels.cpu()
    temperature = metrics.fit_temperature(val_logits, val_labels)
    val_before = metrics.classification_metrics(val_logits, val_labels)
    val_after = metrics.classification_metrics(val_logits, val_labels, temperature)

    ood_threshold = metrics.top_probability_threshold(val_logits, temperature)
    dtype = getattr(torch, cfg.weights_dtype)
    train_cfg = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("resume",)}
    config = hub.save_pretrained(folder, model, name, model_args, dtype=dtype, extra_config={
        "initialization": init,
        "pretrained": name == "mobilenet" and not cfg.no_pretrained,
        "temperature": temperature,
        "notice_threshold": {"top_probability": ood_threshold,
                             "how": "5th percentile of the calibrated top-class probability on the validation "
                                    "split: 95 % of real validation items score above it"},
        "seed": cfg.seed,
        "parameters": count_parameters(model),
        "device": hardware(dev) + (f" x {world} processes (DistributedDataParallel)" if world > 1 else ""),
        "world_size": world,
        "train_config": train_cfg,
    })

    # The report is taken on the files as saved, so that the recorded numbers are the ones a user gets.
    saved_model, _ = hub.load_folder(folder, device=dev)
    test_logits = metrics.predict_logits(saved_model, splits.test.images)
    test_labels = splits.test.labels.cpu()
    test = metrics.classification_metrics(test_logits, test_labels, temperature)
    test_uncal = metrics.classification_metrics(test_logits, test_labels)
    report = {
        "model": name,
        "initialization": init,
        "test": test,
        "test_ece_before_temperature": test_uncal["ece"],
        "test_log_loss_before_temperature": test_uncal["log_loss"],
        "val": {"accuracy": val_after["accuracy"], "loss_best": run["best_val_loss"],
                "ece_before": val_before["ece"], "ece_after": val_after["ece"],
                "log_loss_before": val_before["log_loss"], "log_loss_after": val_after["log_loss"]},
        "temperature": temperature,
        "best_epoch": run["best_epoch"],
        "epochs_run": run["epoch"],
        "stopped_early": run["stopped_early"],
        "train_seconds": run["train_seconds"],
        "seconds_per_epoch": run["train_seconds"] / max(1, len(run["history"])),
        "history": run["history"],
        "split": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test),
                  "seed": cfg.seed, "limit": cfg.limit},
        "device": config["device"],
        "parameters": config["parameters"],
    }
    preds = test_logits.argmax(1).numpy()
    report["plots"] = plots.write_all(folder, test, run["history"], splits.test.images.cpu().numpy(),
                                      test_labels.numpy(), preds, name, cfg.seed)
    hub.atomic_write_json(folder / hub.METRICS_NAME, report)
    (folder / STATE_NAME).unlink(missing_ok=True)  # the run is complete; the folder is what travels
    return summary_row(report)


def summary_row(report: dict) -> dict:
    t = report["test"]
    return {"model": report["model"], "test_acc": t["accuracy"], "macro_f1": t["macro_avg"]["f1-score"],
            "mcc": t["mcc"], "log_loss": t["log_loss"], "ece_before": report["test_ece_before_temperature"],
            "ece_after": t["ece"], "epochs": report["epochs_run"], "best_epoch": report["best_epoch"],
            "s_per_epoch": report["seconds_per_epoch"], "params": report["parameters"],
            "init": report["initialization"]}


def train_all(cfg: TrainConfig) -> list[dict]:
    """Train every model in cfg.models on one data split; return the rows of the results table."""
    cfg.validate()
    dist_ = Dist.from_env()
    dev = resolve_device(cfg.device)
    if dist_.world > 1:  # launched by torchrun: NCCL between GPUs, gloo between CPU processes
        if dev.type == "cuda":
            dev = torch.device("cuda", dist_.local_rank)
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        torch.set_num_threads(max(1, torch.get_num_threads() // dist_.world))
    try:
        splits = load_splits(cfg.data_dir, cfg.val_size, cfg.seed, cfg.limit, device=dev)
        log.info("data: %d train / %d val / %d test images on %s (rank %d of %d)", len(splits.train),
                 len(splits.val), len(splits.test), dev, dist_.rank, dist_.world)
        rows = [fit(name, cfg, splits, dev, dist_) for name in cfg.models]
        if dist_.world > 1:
            dist.barrier()  # the other ranks wait while rank 0 writes the report
    finally:
        if dist_.world > 1:  # also after an error, so that the job ends instead of hanging
            dist.destroy_process_group()
    return [r for r in rows if r is not None]


def format_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A Markdown table: columns are (key, header, format)."""
    head = "| " + " | ".join(h for _, h, _ in columns) + " |"
    sep = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(format(r[k], f) if r.get(k) is not None else "" for k, _, f in columns) + " |"
            for r in rows]
    return "\n".join([head, sep, *body])


RESULT_COLUMNS = [("model", "model", ""), ("test_acc", "test acc", ".4f"), ("macro_f1", "macro F1", ".4f"),
                  ("mcc", "MCC", ".4f"), ("log_loss", "log loss", ".4f"), ("ece_before", "ECE raw", ".4f"),
                  ("ece_after", "ECE calibrated", ".4f"), ("epochs", "epochs", "d"),
                  ("best_epoch", "best epoch", "d"), ("s_per_epoch", "s/epoch", ".1f"), ("params", "params", ",d")]

