"""Is this a garment at all? A detector in the classifier's own feature space.

The Mahalanobis detector of Lee et al. (2018), "A Simple Unified Framework for Detecting
Out-of-Distribution Samples": each class is a Gaussian over the penultimate-layer features, all classes
sharing one covariance (fitted on training images, shrunk with Ledoit-Wolf so that it inverts well);
a picture's score is its squared distance to the nearest class mean. The threshold is the score that a
chosen share of validation items stays under, so that share of real items passes. The statistics are
stored beside the checkpoint as safetensors, never pickled.

A second signal, outlier exposure (Hendrycks et al. 2019, "Deep Anomaly Detection with Outlier Exposure"): a
logistic regression on the same features, garments (training items and rendered training photos) against
pictures of things that are not garments (fmnist.photo.outliers). Photographed garments sit far from the data
set's class means, as do most things; the regression learns the directions in which things differ, so that the
Mahalanobis limit can let photographed garments through.
"""

from __future__ import annotations

from pathlib import Path

import torch

from fmnist.data import to_float

DETECTOR_NAME = "detector.safetensors"
FIT_IMAGES = 20_000  # training images used for the class means and covariance: plenty for D <= 1024
# The outlier head's inverse regularisation strength. Chosen on validation (benchmarks.notice_sweep --head-c, default
# model, shipped pass rates): 0.1 -> 3 took the non-garments flagged from 93.5 / 90.7 to 99.1 / 95.4 % and pale
# garment photos from 4.1 to 3.3 % (benchmarks/results/notice-sweep-val-head-c-cpu.json). 0.1 had been set for 518
# things; with 1,563 the head can follow the data more closely.
OUTLIER_HEAD_C = 3.0


@torch.inference_mode()
def penultimate_features(model: torch.nn.Module, images_uint8: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """(N, D) float64 features on the CPU for (N, 28, 28) uint8 images, in eval mode (restored afterwards)."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    out = []
    try:
        for i in range(0, len(images_uint8), batch_size):
            out.append(model.penultimate(to_float(images_uint8[i : i + batch_size].to(dev))).double().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)


def fit_mahalanobis(feats: torch.Tensor, labels: torch.Tensor, n_classes: int) -> dict[str, torch.Tensor]:
    """Class means (C, D) and the shared precision matrix (D, D) of the features."""
    from sklearn.covariance import LedoitWolf

    labels = torch.as_tensor(labels).cpu()
    means = torch.stack([feats[labels == c].mean(0) for c in range(n_classes)])
    centred = (feats - means[labels]).numpy()
    precision = torch.from_numpy(LedoitWolf(assume_centered=True).fit(centred).precision_)
    return {"means": means, "precision": precision}


def mahalanobis_scores(feats: torch.Tensor, stats: dict[str, torch.Tensor]) -> torch.Tensor:
    """(N,) squared Mahalanobis distance of each feature vector to its nearest class mean."""
    diff = feats.double()[:, None, :] - stats["means"].double()[None]  # (N, C, D)
    d2 = torch.einsum("ncd,de,nce->nc", diff, stats["precision"].double(), diff)
    return d2.min(1).values


def fit_outlier_head(
    garments: torch.Tensor, things: torch.Tensor, c: float = OUTLIER_HEAD_C
) -> dict[str, torch.Tensor]:
    """Standardisation and logistic-regression weights: a positive score says "a thing, not a garment"."""
    from sklearn.linear_model import LogisticRegression

    x = torch.cat([garments, things]).double()
    y = torch.cat([torch.zeros(len(garments)), torch.ones(len(things))]).numpy()
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    clf = LogisticRegression(C=c, max_iter=5000, class_weight="balanced").fit(((x - mean) / scale).numpy(), y)
    return {
        "oe_mean": mean,
        "oe_scale": scale,
        "oe_weight": torch.from_numpy(clf.coef_[0]),
        "oe_bias": torch.tensor([clf.intercept_[0]], dtype=torch.float64),
    }


def outlier_scores(feats: torch.Tensor, stats: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """(N,) the outlier head's logit of "not a garment", or None for a detector without the head."""
    if "oe_weight" not in stats:
        return None
    return ((feats.double() - stats["oe_mean"]) / stats["oe_scale"]) @ stats["oe_weight"] + stats["oe_bias"][0]


def as_stored(stats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The statistics as the file keeps them (bfloat16, float32.s range: the MobileNet.s 1024x1024 precision is 2 MB
    instead of 4), back in float64. Thresholds are set with these, so they match what the app loads."""
    return {k: v.to(torch.bfloat16).double() for k, v in stats.items()}


def save_detector(folder: Path, stats: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save

    from fmnist.checkpoints.store import atomic_write_bytes

    atomic_write_bytes(
        Path(folder) / DETECTOR_NAME,
        save({k: v.to(torch.bfloat16).contiguous() for k, v in stats.items()}, metadata={"detector": "mahalanobis"}),
    )


def load_detector(folder: Path) -> dict[str, torch.Tensor] | None:
    """The stored statistics, or None for a checkpoint made before the detector existed."""
    from safetensors.torch import load_file

    path = Path(folder) / DETECTOR_NAME
    return {k: v.double() for k, v in load_file(path).items()} if path.is_file() else None
