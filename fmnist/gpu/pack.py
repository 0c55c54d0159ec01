"""What a GPU run brings back: its plan.json, its logs, and the checkpoints it trained, packed into a few files of
a bounded size (a remote machine may return only so many, so large), and the best of the best model's seeds."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import torch

PART_BYTES = 15 * 2**20  # the largest file of a pack (--part-mib)
MAX_FILES = 8  # the most files a pack holds (--max-files)
BEST_MODEL = "wide_resnet"
BEST_SEEDS = (0, 1, 2)


def best_seed(plan):
    done = [j for j in plan.jobs if j.argv[1] == BEST_MODEL and j.state == "done"]
    return max(done, key=lambda j: j.result["val_acc"]) if done else None


def pack(plan, dest: Path, max_files: int = MAX_FILES, part_bytes: int = PART_BYTES) -> list[Path]:
    """plan.json, logs.tar.gz and checkpoints.tar.gz in parts: at most max_files files of at most part_bytes."""
    dest.mkdir(parents=True, exist_ok=True)
    staging = plan.work / "pack"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    folders = {
        j.argv[1]: plan.work / "runs" / j.name / j.argv[1]
        for j in plan.jobs
        if j.state == "done" and j.argv[1] != BEST_MODEL
    }
    best = best_seed(plan)
    if best is not None:
        folders[BEST_MODEL] = plan.work / "runs" / best.name / BEST_MODEL
        plan.record["best_model"] = {"seed_packed": best.name, **summarise_seeds(plan)}
    gallery = next(
        (
            plan.work / "runs" / j.name / "gallery.safetensors"
            for j in plan.jobs
            if j.state == "done"
            and j.argv[1] != BEST_MODEL
            and (plan.work / "runs" / j.name / "gallery.safetensors").is_file()
        ),
        None,
    )
    archive = staging / "checkpoints.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, folder in sorted(folders.items()):
            tar.add(folder, arcname=f"checkpoints/{name}")
        if gallery is not None:
            tar.add(gallery, arcname="checkpoints/gallery.safetensors")
    with tarfile.open(dest / "logs.tar.gz", "w:gz") as tar:
        tar.add(plan.work / "logs", arcname="logs")
    parts = _split(archive, dest, max_files - 2, part_bytes)
    plan.record["packed"] = {"models": sorted(folders), "parts": [p.name for p in parts]}
    plan.save()
    shutil.copy(plan.work / "plan.json", dest / "plan.json")
    return [dest / "plan.json", dest / "logs.tar.gz", *parts]


def _split(archive: Path, dest: Path, max_parts: int, part_bytes: int = PART_BYTES) -> list[Path]:
    size = archive.stat().st_size
    if size > max_parts * part_bytes:
        raise RuntimeError(
            f"{archive} is {size / 2**20:.1f} MiB: more than {max_parts} parts of {part_bytes / 2**20:g} MiB"
        )
    parts = []
    with open(archive, "rb") as f:
        for i in range(max(1, -(-size // part_bytes))):
            part = dest / f"checkpoints.tar.gz.part{i:02d}"
            part.write_bytes(f.read(part_bytes))
            parts.append(part)
    return parts


def summarise_seeds(plan) -> dict:
    accs = [j.result["test_acc"] for j in plan.jobs if j.argv[1] == BEST_MODEL and j.state == "done"]
    vals = [j.result["val_acc"] for j in plan.jobs if j.argv[1] == BEST_MODEL and j.state == "done"]
    if not accs:
        return {}
    t = torch.tensor(accs, dtype=torch.float64)
    return {
        "seeds": len(accs),
        "test_acc_mean": t.mean().item(),
        "test_acc_std": t.std().item() if len(accs) > 1 else 0.0,
        "test_accs": accs,
        "val_accs": vals,
    }
