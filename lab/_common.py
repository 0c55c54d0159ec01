"""What the lab's scripts share: the repository root, a result file with the hardware and the command that
produced it, written to lab/results/NAME-<device>.json, and the weighted logistic-regression head that the notice's
outlier heads were until they became small networks."""

from pathlib import Path

import numpy as np
import torch

from benchmarks import _common

ROOT = _common.ROOT
RESULTS = Path(__file__).resolve().parent / "results"
LINEAR_C = 3.0  # the logistic-regression heads' inverse regularisation strength, as shipped until they were replaced


def record(name: str, rows: list[dict], dev: torch.device, extra: dict | None = None, **kwargs) -> Path:
    return _common.record(name, rows, dev, extra, folder=RESULTS, **kwargs)


def weighted_linear_head(garments, things, garment_weights=None, thing_weights=None):
    """Standardisation (mean, scale) and a logistic regression of (N, D) features, garments (0) against things (1):
    each side weighs half, as class_weight="balanced" does, and within a side each picture by its weight (equal
    where none are given)."""
    from sklearn.linear_model import LogisticRegression

    from fmnist.notice.detector import standardised

    z, y, mean, scale = standardised(garments, things)
    g = np.ones(len(garments)) if garment_weights is None else np.asarray(garment_weights, float)
    t = np.ones(len(things)) if thing_weights is None else np.asarray(thing_weights, float)
    w = np.r_[g / g.sum(), t / t.sum()] * len(z) / 2
    clf = LogisticRegression(C=LINEAR_C, max_iter=5000).fit(z, y, sample_weight=w)
    return mean, scale, clf
