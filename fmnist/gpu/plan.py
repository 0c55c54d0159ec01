"""The one prepared command for a GPU machine (scripts/gpu_train.sh runs it), and its unpacking here.

    bash scripts/gpu_train.sh --pack "$OUT"                 # on the GPU machine: train, then pack into $OUT
    bash scripts/gpu_train.sh --smoke --pack /tmp/pack      # the same steps on the CPU, tiny, in about 2 minutes
    # here, before and after the call: fmnist.gpu.local (the data to carry, the call's size, unpack and adopt)

What it runs, in one call of at most --budget-s seconds (default 540, inside a 10-minute command):
1. the speedrun, 5 runs, alone on the GPU (its timings must not share the chip);
2. then, as parallel processes (small models leave the GPU mostly idle): the best model (wide_resnet) for 3
   seeds, and every bundled model retrained with its defaults and the photo training recipe (PHOTO_RECIPE); the
   MobileNet with --no-pretrained when no ImageNet weights can be had, so it keeps its honest label.
   Each job has the time left; one still running at the deadline is stopped and recorded as cut off.
3. the pack (fmnist.gpu.pack): at most --max-files files (8) of at most --part-mib MiB (15): plan.json (every
   job's command, state, figures, time to 90/92/94 % validation, the speedrun, the machine), logs.tar.gz, and
   checkpoints.tar.gz split in parts
   (each bundled model's folder, the best-on-validation wide_resnet seed, the similar-items gallery).
plan.json is rewritten whenever a job ends, so a call cut off at its limit still leaves its figures.

Before anything runs it finds the data set (--data-dir, the carried .gpu/data that `python -m fmnist.gpu
data` writes, then the loader's own places, never a download) and checks the four files' digests; without them
it stops within seconds, saying what to carry. A failed or cut-off job or speedrun makes the command exit 1, and
plan.json's "failures" names each one, why, and the last lines of its log. docs/gpu.md gives the call.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from fmnist.gpu.local import NoData, find_data
from fmnist.gpu.pack import BEST_MODEL, BEST_SEEDS, MAX_FILES, PART_BYTES, pack
from fmnist.models.registry import DEFAULT_MODELS

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
LOG_TAIL_LINES = 15
# the photo training recipe (README, "Training on rendered photos"): a share of training images swapped for
# the pipeline's own output of rendered training items; for the models the app leans on
PHOTO_RECIPE_MODELS = ("deep_cnn", "resnet", "wide_resnet")
PHOTO_SHARE = 0.25
# prints inside the silhouette (fmnist.training.prints), chosen on validation: lab/results/photo-mix-prints-cpu.json
PRINT_P = 0.25
# --smoke: the same steps with tiny settings, on the CPU
SMOKE_FLAGS = ["--limit", "600", "--epochs", "1", "--device", "cpu", "--batch-size", "128"]
SMOKE_SPEEDRUN = ["--limit", "600", "--epochs", "1", "--device", "cpu", "--batch-size", "128", "--runs", "2"]
THRESHOLDS = (0.90, 0.92, 0.94)
# the speedrun's share of the call: a compile warm-up (tens of seconds) and 5 runs of a few seconds each; a
# speedrun that hangs must not eat the trainings' minutes
SPEEDRUN_BUDGET_S = 180


@dataclass
class Job:
    name: str  # also the folder under OUT/runs/
    argv: list[str]  # train.py's flags
    state: str = "waiting"  # waiting, running, done, failed, cut off
    seconds: float | None = None
    result: dict = field(default_factory=dict)
    error: str | None = None  # why it failed or was cut off
    log_tail: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        return "python train.py " + " ".join(self.argv)


def mobilenet_flag() -> list[str]:
    """--no-pretrained when no ImageNet weights can be had here (no cache, no Hub): the honest label."""
    from fmnist.models.pretrained import PretrainedUnavailable, resolve_mobilenet_weights
    from fmnist.training.config import TrainConfig

    try:
        resolve_mobilenet_weights(TrainConfig(models=["mobilenet"]))
        return []
    except PretrainedUnavailable:
        return ["--no-pretrained"]


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def plan_jobs(work: Path, photo_data: Path | None, smoke: bool, data_dir: Path | None = None) -> list[Job]:
    extra = SMOKE_FLAGS if smoke else []
    if data_dir is not None:
        extra = [*extra, "--data-dir", str(data_dir)]
    jobs = []
    for seed in BEST_SEEDS[:1] if smoke else BEST_SEEDS:  # the smoke run tries the path once, not three times
        jobs.append(
            Job(
                f"{BEST_MODEL}-seed{seed}",
                ["--models", BEST_MODEL, "--seed", str(seed), "--out", str(work / f"{BEST_MODEL}-seed{seed}")],
            )
        )
    for name in DEFAULT_MODELS:
        argv = ["--models", name, "--out", str(work / name)]
        if name == "mobilenet":
            argv += mobilenet_flag()
        jobs.append(Job(name, argv))
    for job in jobs:
        model = job.argv[1]
        job.argv += ["--weights-dtype", "float16"]  # half the bytes to bring back and bundle; metrics taken on them
        if photo_data is not None and model in PHOTO_RECIPE_MODELS:
            job.argv += ["--photo-data", str(photo_data), "--photo-share", str(PHOTO_SHARE), "--print-p", str(PRINT_P)]
        job.argv += extra
    return jobs


def crossings(history: list[dict]) -> dict:
    """Seconds of training until validation accuracy first reached each threshold (None: never)."""
    out, elapsed = {}, 0.0
    for row in history:
        elapsed += row["seconds"]
        for t in THRESHOLDS:
            if row["val_acc"] >= t and f"val_{t:.2f}_s" not in out:
                out[f"val_{t:.2f}_s"] = round(elapsed, 2)
    return {f"val_{t:.2f}_s": out.get(f"val_{t:.2f}_s") for t in THRESHOLDS}


def job_result(folder: Path, model: str) -> dict:
    metrics = json.loads((folder / model / "metrics.json").read_text())
    return {
        "test_acc": metrics["test"]["accuracy"],
        "val_acc": metrics["val"]["accuracy"],
        "epochs": metrics["epochs_run"],
        "train_seconds": metrics["train_seconds"],
        "seconds_per_epoch": metrics["seconds_per_epoch"],
        "device": metrics["device"],
        **crossings(metrics["history"]),
    }


def machine() -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cpus": os.cpu_count(),
    }
    for pkg in ("timm", "huggingface_hub", "numpy", "scikit-image"):
        try:
            from importlib.metadata import version

            info[pkg] = version(pkg)
        except Exception:  # not installed there: recorded as such
            info[pkg] = None
    try:
        info["nvidia_smi"] = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        info["nvidia_smi"] = None
    return info


class Plan:
    def __init__(
        self,
        work: Path,
        smoke: bool,
        budget_s: float,
        parallel: int,
        photo_data: Path | None,
        data_dir: Path | None = None,
    ):
        self.work, self.smoke, self.parallel, self.data_dir = work, smoke, parallel, data_dir
        self.deadline = time.monotonic() + budget_s
        self.jobs = plan_jobs(work / "runs", photo_data, smoke, data_dir)
        self.record = {
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "smoke": smoke,
            "budget_s": budget_s,
            "data_dir": str(data_dir) if data_dir else None,
            "photo_data": str(photo_data) if photo_data else None,
            "machine": machine(),
            "speedrun": None,
            "speedrun_state": "waiting",
            "jobs": [],
            "failures": [],
        }
        (work / "logs").mkdir(parents=True, exist_ok=True)

    def save(self) -> None:
        self.record["jobs"] = [asdict(j) | {"command": j.command} for j in self.jobs]
        self.record["failures"] = self.failures()
        tmp = self.work / "plan.json.tmp"
        tmp.write_text(json.dumps(self.record, indent=2) + "\n")
        tmp.replace(self.work / "plan.json")

    def _popen(self, argv: list[str], log_name: str, program: tuple[str, ...] = ("train.py",)) -> subprocess.Popen:
        """python PROGRAM ARGV (train.py unless told: ("-m", "fmnist.training.speedrun")), logged to its file."""
        logf = open(self.work / "logs" / f"{log_name}.log", "w")
        env = os.environ | {"PYTHONUNBUFFERED": "1"}
        if self.parallel > 1:  # processes sharing the machine's cores
            env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 2) // self.parallel))
        return subprocess.Popen(
            [sys.executable, *program, *argv],
            cwd=ROOT,
            stdout=logf,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def failures(self) -> list[dict]:
        """Every part that did not end well: which, why, and the end of its log."""
        out = []
        if self.record.get("speedrun_state") not in ("waiting", "running", "done"):
            out.append(
                {
                    "part": "speedrun",
                    "state": self.record["speedrun_state"],
                    "why": self.record.get("speedrun_error"),
                    "log_tail": self.record.get("speedrun_log_tail", []),
                }
            )
        out += [
            {"part": j.name, "state": j.state, "why": j.error, "log_tail": j.log_tail}
            for j in self.jobs
            if j.state in ("failed", "cut off")
        ]
        return out

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def speedrun(self) -> None:
        out = self.work / "speedrun.json"
        argv = ["--out", str(out)] + (SMOKE_SPEEDRUN if self.smoke else [])
        if self.data_dir is not None:
            argv += ["--data-dir", str(self.data_dir)]
        self.record["speedrun_command"] = "python -m fmnist.training.speedrun " + " ".join(argv)
        self.record["speedrun_state"] = "running"
        proc = self._popen(argv, "speedrun", ("-m", "fmnist.training.speedrun"))
        limit = max(1.0, min(SPEEDRUN_BUDGET_S, self.left() - 60))  # the trainings need the rest
        try:
            proc.wait(timeout=limit)
            state, error = ("done", None) if proc.returncode == 0 else ("failed", f"exit {proc.returncode}")
        except subprocess.TimeoutExpired:
            _stop(proc)
            state, error = "cut off", f"still running after its {limit:.0f} s"
        self.record["speedrun"] = json.loads(out.read_text()) if out.is_file() else None
        if state == "done" and self.record["speedrun"] is None:
            state, error = "failed", f"exit 0 but no {out.name} written"
        self.record["speedrun_state"], self.record["speedrun_error"] = state, error
        if state != "done":
            self.record["speedrun_log_tail"] = log_tail(self.work / "logs" / "speedrun.log")
            log.error("speedrun %s: %s", state, error)
        self.save()

    def train(self) -> None:
        waiting, running = list(self.jobs), {}
        while waiting or running:
            while waiting and len(running) < self.parallel and self.left() > 0:
                job = waiting.pop(0)
                job.state, started = "running", time.monotonic()
                running[job.name] = (job, self._popen(job.argv, job.name), started)
                self.save()
            time.sleep(0.5)
            for name, (job, proc, started) in list(running.items()):
                if proc.poll() is None and self.left() > 0:
                    continue
                if proc.poll() is None:
                    _stop(proc)
                    job.state, job.error = "cut off", "still running at the call's budget"
                elif proc.returncode == 0:
                    job.state = "done"
                else:
                    job.state, job.error = "failed", f"exit {proc.returncode}"
                job.seconds = round(time.monotonic() - started, 1)
                if job.state == "done":
                    try:
                        job.result = job_result(self.work / "runs" / job.name, job.argv[1])
                    except (OSError, KeyError, ValueError) as e:
                        job.state, job.error = "failed", f"exit 0 but no metrics: {e}"
                if job.state != "done":
                    job.log_tail = log_tail(self.work / "logs" / f"{job.name}.log")
                    log.error("%s %s: %s", job.name, job.state, job.error)
                del running[name]
                self.save()
            if self.left() <= 0:
                for job in waiting:
                    job.state, job.error = "cut off", "never started: the call's budget ran out"
                waiting = []
        self.save()


def _stop(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_plan(args) -> int:
    try:
        data_dir = find_data(args.data_dir)
    except NoData as e:
        print(e, file=sys.stderr)
        return 2
    log.info("data set: %s (digests checked)", data_dir)
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    photo = Path(args.photo_data) if args.photo_data else None
    if photo is not None and not photo.is_file():
        log.warning("no photo data at %s: training without the photo recipe", photo)
        photo = None
    parallel = args.parallel or (2 if args.smoke else len(BEST_SEEDS) + len(DEFAULT_MODELS))
    plan = Plan(work, args.smoke, args.budget_s, parallel, photo, data_dir)
    plan.save()
    log.info("speedrun (%.0f s left)", plan.left())
    plan.speedrun()
    log.info("training %d jobs, %d at a time (%.0f s left)", len(plan.jobs), parallel, plan.left())
    plan.train()
    files = pack(plan, Path(args.pack), args.max_files, int(args.part_mib * 2**20))
    for j in plan.jobs:
        log.info("%-20s %-8s %s", j.name, j.state, j.result)
    print(
        json.dumps(
            {
                "packed": [f.name for f in files],
                "speedrun": plan.record["speedrun_state"],
                "jobs": {j.name: j.state for j in plan.jobs},
            },
            indent=1,
        )
    )
    for failure in plan.failures():
        print(f"FAILED {failure['part']} ({failure['state']}): {failure['why']}", file=sys.stderr)
        for line in failure["log_tail"][-5:]:
            print(f"    {line}", file=sys.stderr)
    return 1 if plan.failures() else 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="the same steps on the CPU with tiny settings")
    p.add_argument("--pack", required=True, help="where the packed files go ($OUT on the GPU machine)")
    p.add_argument(
        "--max-files", type=int, default=MAX_FILES, help="the most files the pack may hold (default %(default)s)"
    )
    p.add_argument(
        "--part-mib",
        type=float,
        default=PART_BYTES / 2**20,
        help="the largest file of the pack, in MiB (default %(default)s)",
    )
    p.add_argument("--work", default="runs/gpu-plan", help="the working folder (default %(default)s)")
    p.add_argument("--budget-s", type=float, default=540.0, help="the whole call's time (default %(default)s)")
    p.add_argument("--parallel", type=int, help="training processes at once (default: all jobs; 2 with --smoke)")
    p.add_argument(
        "--data-dir", help="the data set's folder (default: the carried .gpu/data, then the loader's places)"
    )
    p.add_argument(
        "--photo-data",
        default="data/photo-data-v6.npz",
        help="the photo training cache (python -m fmnist.photo.build; the repository holds it)",
    )
    return run_plan(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
