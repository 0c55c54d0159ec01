"""Latency of one app request without the web server: preprocessing + prediction + Grad-CAM + overlay,
per bundled model, p50 and p95 over repeated calls on one example picture.

    python benchmarks/latency.py [--device cpu] [--runs 100]
"""

import argparse
import time

import numpy as np
import torch
from _common import ROOT, device, record

from fmnist.predict import Predictor
from fmnist.training import format_table


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--device", default="cpu")
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    args = p.parse_args()
    dev = device(args.device)
    predictor = Predictor.from_source(args.checkpoints, device=str(dev))
    example = sorted((ROOT / "examples").glob("*.png"))[0]
    rows = []
    for name in predictor.models:
        for _ in range(5):  # warm-up
            predictor.predict(example, name)
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            predictor.predict(example, name)
            if dev.type == "cuda":
                torch.cuda.synchronize()
            times.append(1000 * (time.perf_counter() - t0))
        rows.append({"model": name, "p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
                     "runs": args.runs})
    path = record("latency", rows, dev, {"threads": torch.get_num_threads()})
    print(format_table(rows, [("model", "model", ""), ("p50_ms", "p50 ms", ".1f"), ("p95_ms", "p95 ms", ".1f")]))
    print(f"({path})")


if __name__ == "__main__":
    main()
