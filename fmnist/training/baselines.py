"""Classical scikit-learn baselines on the same split as the networks (the seed 000 README's trio).

python -m fmnist.training.baselines                 # into runs/fashion-mnist/baselines.json
python -m fmnist.training.baselines --out checkpoints
"""

from __future__ import annotations

import logging
import time

import numpy as np
from tqdm.auto import tqdm

from fmnist.data import Splits

log = logging.getLogger(__name__)


def baseline_models(seed: int) -> dict:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    # Zalando's benchmark reports LogisticRegression ~84 %, linear SVM ~83-84 %, RandomForest ~87 %.
    return {
        "logistic_regression": LogisticRegression(C=1.0, max_iter=200, random_state=seed),
        "linear_svm": LinearSVC(C=0.1, dual=False, random_state=seed),
        "random_forest": RandomForestClassifier(n_estimators=100, n_jobs=-1, random_state=seed),
    }


def _flat(split) -> tuple[np.ndarray, np.ndarray]:
    return split.images.cpu().numpy().reshape(len(split), -1).astype(np.float32) / 255.0, split.labels.cpu().numpy()


def run_baselines(splits: Splits, seed: int = 0) -> list[dict]:
    """Fit each baseline on the training part; report validation and test accuracy and fit time."""
    (xtr, ytr), (xva, yva), (xte, yte) = _flat(splits.train), _flat(splits.val), _flat(splits.test)
    rows = []
    models = baseline_models(seed)
    for name, clf in tqdm(models.items(), desc="baselines", total=len(models)):
        t0 = time.perf_counter()
        clf.fit(xtr, ytr)
        fit_s = time.perf_counter() - t0
        rows.append(
            {
                "model": name,
                "val_acc": float(clf.score(xva, yva)),
                "test_acc": float(clf.score(xte, yte)),
                "fit_seconds": fit_s,
                "train_images": int(len(ytr)),
            }
        )
        log.info("%s: test accuracy %.4f, fit %.1f s", name, rows[-1]["test_acc"], fit_s)
    return rows


COLUMNS = [
    ("model", "model", ""),
    ("val_acc", "val acc", ".4f"),
    ("test_acc", "test acc", ".4f"),
    ("fit_seconds", "fit s", ".1f"),
    ("train_images", "train images", ",d"),
]


def main(argv: list[str] | None = None) -> int:
    import argparse
    import sys

    from fmnist.checkpoints.store import atomic_write_json
    from fmnist.data import DataError, load_splits
    from fmnist.evaluation.reports import format_table, overview
    from fmnist.training.config import TrainConfig
    from fmnist.training.flags import positive_int

    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m fmnist.training.baselines",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dataset", choices=["fashion-mnist", "mnist"], default=d.dataset)
    p.add_argument("--out", help="the folder baselines.json goes into (default: runs/<dataset>/)")
    p.add_argument("--limit", type=positive_int, help="N training images (N/4 for validation and test)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--data-dir", help="the folder of the data set's four .gz files")
    ns = p.parse_args(argv)
    cfg = TrainConfig(dataset=ns.dataset, out=ns.out, limit=ns.limit, seed=ns.seed, data_dir=ns.data_dir)
    try:
        splits = load_splits(cfg.data_dir, cfg.val_size, cfg.seed, cfg.limit, dataset=cfg.dataset)
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = run_baselines(splits, cfg.seed)
    atomic_write_json(cfg.out_dir / "baselines.json", rows)
    print("\nBaselines (scikit-learn, same split):\n" + format_table(rows, COLUMNS))
    print(overview(cfg.out_dir))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
