"""The speedrun: how fast a model reaches 94 % test accuracy, timed the way airbench times CIFAR-10.

    python -m fmnist.training.speedrun                   # 5 runs on the GPU, each run's time and accuracy
    python -m fmnist.training.speedrun --runs 1 --device cpu --limit 2000 --epochs 1   # a rehearsal on the CPU

What is timed, per run (airbench's rule): every training step and the final evaluation on the 10,000 test
images (with flip test-time augmentation), from a synchronised start to a synchronised end. What is not: the
data's upload to the device (once, before all runs), the compile warm-up (one untimed run of a few steps on a
throwaway model, reported on its own), and the validation accuracy taken after the clock stops.

The trainer is lean rather than special: the whole split lives on the device as uint8, each batch is indexed,
augmented on the device (fmnist.training.augment: shifts and flips drawn in one go) and fed in bfloat16 and
channels-last; the loss and accuracy stay on the device, so no step waits for the host. It serves any model of
the registry (--models), and benchmarks/throughput.py reports its images/s against the floor the model's FLOPs
and the chip's peak allow.

Results (each run as it ends, so a run cut off still leaves its figures) go to --out, by default
benchmarks/results/speedrun-<device>.json. No figure is claimed here until a GPU run has recorded one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from fmnist.data import load_splits, to_float
from fmnist.models.registry import build_model
from fmnist.training.augment import AugmentConfig, augment
from fmnist.training.config import TrainConfig
from fmnist.training.environment import hardware, resolve_device
from fmnist.training.loop import _optimizer, _scheduler

log = logging.getLogger(__name__)

# H200 dense bfloat16 peak from NVIDIA's data sheet (989 TFLOP/s; the device notes measured ~790 in practice)
PEAK_TFLOPS = {"NVIDIA H200": 989.0, "NVIDIA H100 80GB HBM3": 989.0, "NVIDIA A100-SXM4-80GB": 312.0}


@dataclass
class SpeedrunConfig:
    """The preset's settings; the command's flags of the same names override them."""

    model: str = "resnet"
    model_args: dict = field(default_factory=dict)
    epochs: int = 12
    batch_size: int = 1024
    lr: float = 8e-3  # AdamW one-cycle peak, as the trainer's; x4 the resnet's 256-batch 3e-3, square-root scaled
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    shift_px: int = 2
    hflip: bool = True
    tta: bool = True  # evaluate on each image and its mirror image, mean of the logits
    runs: int = 5
    seed: int = 0
    limit: int | None = None
    device: str = "auto"
    compile: bool | None = None  # None: on CUDA only
    warmup_steps: int = 5

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            models=[self.model],
            lr=self.lr,
            weight_decay=self.weight_decay,
            optimizer="adamw",
            schedule="onecycle",
            label_smoothing=self.label_smoothing,
        )


def _flip_tta_logits(model, images: torch.Tensor, batch: int, tta: bool, cuda: bool) -> torch.Tensor:
    outs = []
    for i in range(0, len(images), batch):
        x = to_float(images[i : i + batch])
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            logits = model(x).float()
            if tta:
                logits = logits + model(x.flip(-1)).float()
        outs.append(logits)
    return torch.cat(outs)


def train_steps(model, opt, sched, images, labels, cfg: SpeedrunConfig, gen: torch.Generator, steps: int | None = None):
    """The timed part's training: cfg.epochs epochs (or `steps` steps), no host sync inside."""
    cuda = images.device.type == "cuda"
    aug = AugmentConfig(shift_px=cfg.shift_px, hflip=cfg.hflip, rotate_deg=0, zoom=0, erase_p=0, photo_p=0)
    n, done = len(labels), 0
    per_epoch = n // cfg.batch_size if n >= cfg.batch_size else 1
    model.train()
    for _ in range(cfg.epochs):
        order = torch.randperm(n, device=images.device, generator=gen)
        for b in range(per_epoch):
            idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            x = augment(to_float(images[idx]), aug, gen)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
                loss = F.cross_entropy(model(x).float(), labels[idx], label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            done += 1
            if steps is not None and done >= steps:
                return done
    return done


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _reset(model, cfg: SpeedrunConfig, dev: torch.device, seed: int, total_steps: int):
    """The model re-initialised in place as a fresh one of this seed would be, with a new optimizer and
    schedule. In place, so that a compiled model is compiled once (in the warm-up) and never inside a run."""
    torch.manual_seed(seed)
    model.load_state_dict(build_model(cfg.model, **cfg.model_args).state_dict())
    opt = _optimizer(model, cfg.train_config(), cfg.lr)
    return opt, _scheduler(opt, cfg.train_config(), cfg.lr, total_steps)


def step_flops(cfg: SpeedrunConfig, dev: torch.device) -> float:
    """FLOPs of one training step per image (forward and backward), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(cfg.model, **cfg.model_args).to(dev)
    x = torch.rand(8, 1, 28, 28, device=dev)
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x), torch.zeros(8, dtype=torch.long, device=dev)).backward()
    return counter.get_total_flops() / 8


def run(cfg: SpeedrunConfig, out: Path | None = None, command: str | None = None, data_dir: str | None = None) -> dict:
    """cfg.runs timed runs; the summary (and each run as it ends) written to out. data_dir: as train.py's
    --data-dir (None: the places the loader knows)."""
    dev = resolve_device(cfg.device)
    use_compile = dev.type == "cuda" if cfg.compile is None else cfg.compile
    splits = load_splits(data_dir, seed=cfg.seed, limit=cfg.limit, device=dev, allow_download=False)
    images, labels = splits.train.images, splits.train.labels
    per_epoch = len(labels) // cfg.batch_size if len(labels) >= cfg.batch_size else 1
    total = per_epoch * cfg.epochs
    flops = step_flops(cfg, dev)
    gpu = hardware(dev)
    peak = PEAK_TFLOPS.get(gpu) if dev.type == "cuda" else None
    result = {
        "command": command,
        "config": dataclasses.asdict(cfg),
        "hardware": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "compile": use_compile,
        "train_images": len(labels),
        "test_images": len(splits.test),
        "steps_per_run": total,
        "train_flops_per_image": flops,
        "peak_tflops": peak,
        "runs": [],
    }

    def save():
        if out is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp")
            tmp.write_text(json.dumps(result, indent=2) + "\n")
            tmp.replace(out)

    # warm-up: compile (or just the kernels' first launch) on a throwaway initialisation, for training and for
    # the evaluation with the very shapes the timed one uses; untimed and reported apart
    t0 = time.perf_counter()
    raw_model = build_model(cfg.model, **cfg.model_args).to(dev)
    if dev.type == "cuda":
        raw_model.to(memory_format=torch.channels_last)
    model = torch.compile(raw_model) if use_compile else raw_model
    opt, sched = _reset(raw_model, cfg, dev, cfg.seed + 10_000, total)
    gen = torch.Generator(device=dev).manual_seed(cfg.seed + 10_000)
    train_steps(model, opt, sched, images, labels, cfg, gen, steps=cfg.warmup_steps)
    model.eval()
    with torch.no_grad():
        _flip_tta_logits(model, splits.test.images, 2048, cfg.tta, dev.type == "cuda")
    _sync(dev)
    result["warmup_seconds"] = time.perf_counter() - t0
    save()

    for r in range(cfg.runs):
        seed = cfg.seed + r
        opt, sched = _reset(raw_model, cfg, dev, seed, total)
        gen = torch.Generator(device=dev).manual_seed(seed)
        _sync(dev)
        t0 = time.perf_counter()
        steps = train_steps(model, opt, sched, images, labels, cfg, gen)
        model.eval()
        with torch.no_grad():
            logits = _flip_tta_logits(model, splits.test.images, 2048, cfg.tta, dev.type == "cuda")
            correct = (logits.argmax(1) == splits.test.labels).sum()
        _sync(dev)
        seconds = time.perf_counter() - t0
        test_acc = correct.item() / len(splits.test)
        with torch.no_grad():  # after the clock: validation, for choosing settings without the test set
            val_acc = (
                (
                    _flip_tta_logits(model, splits.val.images, 2048, cfg.tta, dev.type == "cuda").argmax(1)
                    == splits.val.labels
                )
                .float()
                .mean()
                .item()
            )
        images_per_s = steps * cfg.batch_size / seconds
        row = {
            "run": r + 1,
            "seed": seed,
            "seconds": seconds,
            "test_acc": test_acc,
            "val_acc": val_acc,
            "train_images_per_s": images_per_s,
        }
        result["runs"].append(row)
        log.info("speedrun %d/%d: %.2f s, test %.4f (val %.4f)", r + 1, cfg.runs, seconds, test_acc, val_acc)
        save()
    accs = torch.tensor([r["test_acc"] for r in result["runs"]])
    secs = torch.tensor([r["seconds"] for r in result["runs"]])
    result["summary"] = {
        "runs": len(accs),
        "test_acc_mean": accs.mean().item(),
        "test_acc_std": accs.std().item() if len(accs) > 1 else 0.0,
        "seconds_mean": secs.mean().item(),
        "seconds_max": secs.max().item(),
    }
    if peak:  # the floor: every FLOP of the step at the chip's peak
        result["summary"]["floor_images_per_s"] = peak * 1e12 / flops
        result["summary"]["share_of_floor"] = (
            sum(r["train_images_per_s"] for r in result["runs"]) / len(accs) / result["summary"]["floor_images_per_s"]
        )
    save()
    return result


def from_flags(ns, explicit: set[str]) -> SpeedrunConfig:
    """The preset, under the flags given explicitly (--model names the model)."""
    base = SpeedrunConfig(runs=ns.runs, device=ns.device)
    changes = {k: getattr(ns, k) for k in ("epochs", "batch_size", "lr", "seed", "limit", "compile") if k in explicit}
    if "model" in explicit:
        changes["model"] = ns.model
    return dataclasses.replace(base, **changes)


def format_runs(result: dict) -> str:
    lines = ["| run | seconds | test acc | val acc | train images/s |", "|---|---|---|---|---|"]
    lines += [
        f"| {r['run']} | {r['seconds']:.2f} | {r['test_acc']:.4f} | {r['val_acc']:.4f} | "
        f"{r['train_images_per_s']:,.0f} |"
        for r in result["runs"]
    ]
    s = result.get("summary", {})
    if s:
        lines.append(
            f"\nmean {100 * s['test_acc_mean']:.2f} % ± {100 * s['test_acc_std']:.2f} over {s['runs']} runs, "
            f"{s['seconds_mean']:.2f} s mean ({s['seconds_max']:.2f} s max); compile warm-up "
            f"{result['warmup_seconds']:.1f} s, not timed; {result['train_flops_per_image'] / 1e9:.2f} GFLOP "
            f"per training image"
        )
        if "floor_images_per_s" in s:
            lines.append(
                f"floor at {result['peak_tflops']:.0f} TFLOP/s: {s['floor_images_per_s']:,.0f} images/s; "
                f"this trainer reaches {100 * s['share_of_floor']:.1f} % of it"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from fmnist.models.registry import MODEL_NAMES
    from fmnist.training.flags import explicit_flags, positive_float, positive_int

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    d = SpeedrunConfig()
    p = argparse.ArgumentParser(
        prog="python -m fmnist.training.speedrun",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", choices=MODEL_NAMES, default=d.model, help="(default: %(default)s)")
    p.add_argument("--runs", type=positive_int, default=d.runs, help="timed runs (default: %(default)s)")
    p.add_argument("--epochs", type=positive_int, default=d.epochs, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=d.batch_size, help="(default: %(default)s)")
    p.add_argument("--lr", type=positive_float, default=d.lr, help="(default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="the first run's seed (default: %(default)s)")
    p.add_argument("--limit", type=positive_int, help="N training images: a rehearsal")
    p.add_argument("--device", default=d.device, help="(default: %(default)s)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=d.compile)
    p.add_argument("--data-dir", help="the folder of the data set's four .gz files")
    p.add_argument("--out", help="the results file (default: benchmarks/results/speedrun-<device>.json)")
    ns = p.parse_args(argv)
    preset = from_flags(ns, explicit_flags(p, argv))
    out = Path(ns.out or Path("benchmarks/results") / f"speedrun-{resolve_device(ns.device).type}.json")
    command = "python -m fmnist.training.speedrun " + " ".join(sys.argv[1:] if argv is None else argv)
    result = run(preset, out, command, ns.data_dir)
    print(format_runs(result))
    print(f"({out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
