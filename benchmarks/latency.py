"""Latency of one app request without the web server: decoding + preprocessing + prediction + heat map +
overlay + the found-item outline, per bundled model, p50 and p95 over repeated calls, on two pictures: a
28x28 example and 12-megapixel (4000x3000) phone-like JPEGs of a Fashion-MNIST item: everyday level, and a
pale garment on a light backdrop.

    python -m benchmarks.latency [--device cpu] [--runs 100]
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks._common import ROOT, device, record
from fmnist.evaluation.reports import format_table
from fmnist.photo.render import render_photo
from fmnist.serving.predict import Predictor


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    args = p.parse_args()
    dev = device(args.device)
    predictor = Predictor.from_source(args.checkpoints, device=str(dev))
    example = sorted((ROOT / "examples").glob("*.png"))[0]
    phone = Path(tempfile.mkdtemp()) / "phone-12mp.jpg"
    item = np.asarray(Image.open(sorted((ROOT / "examples").glob("*.png"))[3]).convert("L"))  # a dress
    render_photo(item, "everyday", np.random.default_rng(0), megapixels=12)[0].save(phone, quality=90)
    # a pale garment on white: the graph cut has the most undecided pixels to settle
    pale = phone.with_name("pale-12mp.jpg")
    render_photo(item, "pale", np.random.default_rng(0), megapixels=12)[0].save(pale, quality=90)
    rows = []
    for picture, what in ((example, "28x28 example"), (phone, "12 MP JPEG"), (pale, "12 MP JPEG, pale garment")):
        runs = args.runs if what.startswith("28") else max(10, args.runs // 5)
        for name in predictor.models:
            for _ in range(3):  # warm-up
                predictor.predict(picture, name)
            times = []
            for _ in range(runs):
                t0 = time.perf_counter()
                predictor.predict(picture, name)
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                times.append(1000 * (time.perf_counter() - t0))
            rows.append(
                {
                    "model": name,
                    "picture": what,
                    "p50_ms": float(np.percentile(times, 50)),
                    "p95_ms": float(np.percentile(times, 95)),
                    "runs": runs,
                }
            )
    path = record("latency", rows, dev, {"threads": torch.get_num_threads()})
    print(
        format_table(
            rows,
            [
                ("model", "model", ""),
                ("picture", "picture", ""),
                ("p50_ms", "p50 ms", ".1f"),
                ("p95_ms", "p95 ms", ".1f"),
            ],
        )
    )
    print(f"({path})")


if __name__ == "__main__":
    main()
