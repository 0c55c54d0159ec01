"""Classical scikit-learn baselines on the same split as the networks (the seed 000 README's trio)."""

from __future__ import annotations

import logging
import time

import numpy as np
from tqdm.auto import tqdm

from .data import Splits

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
