"""Catalogue tagging speed: today's serial per-picture path against the fast tagging path (fmnist.tag.core).

    python -m benchmarks.tagging [--n 300] [--folder /tmp/fmnist-catalogue] [--checkpoints checkpoints]

The catalogue is --n phone-sized JPEGs (12 MP, 4032x3024, as a phone saves them) of validation items drawn
by the photo benchmark's renderers (every renderer and level in turn), written once into --folder. Then,
with nothing else running:
- serial: `Predictor.predict` on each file in turn, the single-picture path (heat map, overlay, outline);
- fast, in-process: `tagging.tag(workers=0)`, decode and segment here, the model on batches;
- fast with 1 and with 2 worker processes decoding and segmenting.
Each reports images per second; the fast rows are checked to give the serial top-1 on every file.
Results go to benchmarks/results/tagging-cpu.json.

    python -m benchmarks.tagging --whole-process --sizes 20,120,1000

times whole processes instead, as a user meets them, start-up included (imports, loading the models, starting
workers): `python -m fmnist.tag FOLDER` against a process that runs `Predictor.predict` on each file in turn,
on folders of 20, 120 and 1,000 pictures (the first --n distinct ones, repeated as hard links past that), with
the same top-1 checked on every file. Results go to benchmarks/results/tagging-process-cpu.json.
"""

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from benchmarks._common import ROOT, record
from fmnist.data import load_splits
from fmnist.evaluation.reports import format_table
from fmnist.photo.render import RENDERERS, render_item
from fmnist.serving.predict import Predictor
from fmnist.tag.core import INLINE_BELOW, catalogue_files, tag

PHONE = (4032, 3024)


def make_catalogue(folder: Path, n: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    have = catalogue_files(folder)
    if len(have) >= n:
        return have[:n]
    val = load_splits(allow_download=False).val
    cells = [(r, lv) for r, (_, levels) in RENDERERS.items() for lv in levels]
    for k in tqdm(range(n), desc="rendering the catalogue"):
        renderer, level = cells[k % len(cells)]
        picture = render_item(renderer, level, val.images[k].numpy(), 7, k)
        exif = picture.getexif()
        picture = picture.convert("RGB")
        w, h = picture.size
        size = PHONE if w >= h else PHONE[::-1]
        picture.resize(size, Image.Resampling.BILINEAR).save(
            folder / f"{k:04d}_{renderer}-{level}.jpg", quality=90, exif=exif
        )
    return catalogue_files(folder)[:n]


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def serial_process(folder: str, out: str, checkpoints: str) -> None:
    """The per-picture path as its own process: Predictor.predict on each file, top-1 to a CSV."""
    predictor = Predictor.from_source(checkpoints)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        for path in catalogue_files(Path(folder)):
            writer.writerow([path.name, predictor.predict(path).top3[0][0]])


def sized_folder(files: list[Path], size: int, root: Path) -> Path:
    folder = root / f"n{size}"
    if not folder.is_dir():
        folder.mkdir(parents=True)
        for k in range(size):
            os.link(files[k % len(files)], folder / f"{k:04d}_{files[k % len(files)].name}")
    return folder


def whole_process(args, files: list[Path]) -> None:
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        folder = sized_folder(files, size, Path(args.folder + "-sized"))
        serial_csv, fast_csv = Path(f"/tmp/tag-serial-{size}.csv"), Path(f"/tmp/tag-fast-{size}.csv")
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.tagging",
                "--serial-process",
                str(folder),
                str(serial_csv),
                args.checkpoints,
            ],
            check=True,
            cwd=ROOT,
        )
        serial_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "fmnist.tag",
                str(folder),
                "--out",
                str(fast_csv),
                "--checkpoints",
                args.checkpoints,
            ],
            check=True,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        fast_s = time.perf_counter() - t0
        serial = {r[0]: r[1] for r in csv.reader(serial_csv.open())}
        fast = {r["file"]: r["top1"] for r in csv.DictReader(fast_csv.open())}
        rows.append(
            {
                "pictures": size,
                "serial_s": serial_s,
                "fast_s": fast_s,
                "speed_up": serial_s / fast_s,
                "same_top1": float(np.mean([fast[k] == v for k, v in serial.items()])),
            }
        )
        print(rows[-1], flush=True)
    path = record(
        "tagging-process",
        rows,
        torch.device("cpu"),
        {"picture_size": list(PHONE), "distinct_pictures": len(files), "inline_below": INLINE_BELOW},
    )
    print(
        format_table(
            rows,
            [
                ("pictures", "pictures", "d"),
                ("serial_s", "serial process s", ".1f"),
                ("fast_s", "python -m fmnist.tag s", ".1f"),
                ("speed_up", "× serial", ".2f"),
                ("same_top1", "same top-1", ".3f"),
            ],
        )
    )
    print(f"({path})")


def main():
    if sys.argv[1:2] == ["--serial-process"]:
        return serial_process(*sys.argv[2:5])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--folder", default="/tmp/fmnist-catalogue")
    p.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    p.add_argument("--whole-process", action="store_true", help="time whole processes, start-up included")
    p.add_argument("--sizes", default="20,120,1000", help="with --whole-process: folder sizes")
    args = p.parse_args()
    files = make_catalogue(Path(args.folder), args.n)
    if args.whole_process:
        return whole_process(args, files)
    predictor = Predictor.from_source(args.checkpoints)
    predictor.predict(files[0])  # warm-up: first-call allocations stay out of the timings
    serial, serial_s = timed(lambda: [predictor.predict(f).top3[0][0] for f in tqdm(files, desc="serial")])
    rows = [
        {
            "path": "serial Predictor.predict (heat map, overlay, outline)",
            "workers": 0,
            "seconds": serial_s,
            "images_per_s": len(files) / serial_s,
            "speed_up": 1.0,
            "same_top1": 1.0,
        }
    ]
    for workers in (0, 1, 2):
        tagged, s = timed(lambda workers=workers: tag(predictor, files, workers=workers))
        rows.append(
            {
                "path": "fast tagging path",
                "workers": workers,
                "seconds": s,
                "images_per_s": len(files) / s,
                "speed_up": serial_s / s,
                "same_top1": float(np.mean([r.top3[0][0] == t for r, t in zip(tagged, serial)])),
            }
        )
        print(rows[-1])
    path = record(
        "tagging",
        rows,
        torch.device("cpu"),
        {"images": len(files), "picture_size": list(PHONE), "torch_threads": torch.get_num_threads()},
    )
    print(
        format_table(
            rows,
            [
                ("path", "path", ""),
                ("workers", "worker processes", "d"),
                ("seconds", "seconds", ".1f"),
                ("images_per_s", "images/s", ".2f"),
                ("speed_up", "× serial", ".2f"),
                ("same_top1", "same top-1", ".3f"),
            ],
        )
    )
    print(f"({path})")


if __name__ == "__main__":
    main()
