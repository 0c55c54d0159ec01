"""Time to accuracy from a training run's own record: the training seconds (evaluation excluded) until
the validation accuracy first reached each target, read from the per-epoch history in metrics.json.

    python -m benchmarks.time_to_accuracy checkpoints/*/metrics.json [--targets 0.90,0.92,0.94]

To time a fresh run, train first (python train.py --models NAME --out runs/tta ...) and point this at it.
"""

import argparse
import json
from pathlib import Path

from benchmarks._common import RESULTS
from fmnist.evaluation.reports import format_table


def time_to(history: list[dict], target: float) -> tuple[float | None, int | None]:
    elapsed = 0.0
    for row in history:
        elapsed += row["seconds"]
        if row["val_acc"] >= target:
            return elapsed, row["epoch"]
    return None, None


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("metrics", nargs="+", type=Path)
    p.add_argument("--targets", default="0.90,0.92,0.94")
    args = p.parse_args()
    targets = [float(t) for t in args.targets.split(",")]
    rows = []
    for path in args.metrics:
        m = json.loads(path.read_text())
        row = {"model": m["model"], "device": m["device"], "test_acc": m["test"]["accuracy"]}
        for t in targets:
            seconds, epoch = time_to(m["history"], t)
            row[f"val {t:.0%}"] = f"{seconds:.0f} s (epoch {epoch})" if seconds is not None else "not reached"
        rows.append(row)
    cols = (
        [("model", "model", ""), ("device", "hardware", "")]
        + [(f"val {t:.0%}", f"val acc {t:.0%}", "") for t in targets]
        + [("test_acc", "final test acc", ".4f")]
    )
    print(format_table(rows, cols))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "time_to_accuracy.json").write_text(
        json.dumps({"sources": [str(p) for p in args.metrics], "rows": rows}, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
