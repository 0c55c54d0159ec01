"""Is this a garment at all? A detector in the classifier's own feature space.

The Mahalanobis detector of Lee et al. (2018), "A Simple Unified Framework for Detecting
Out-of-Distribution Samples": each class is a Gaussian over the penultimate-layer features, all classes
sharing one covariance (fitted on training images, shrunk with Ledoit-Wolf so that it inverts well);
a picture's score is its squared distance to the nearest class mean. The threshold is the score that a
chosen share of validation items stays under, so that share of real items passes. The statistics are
stored beside the checkpoint as safetensors, never pickled.

A second signal, outlier exposure (Hendrycks et al. 2019, "Deep Anomaly Detection with Outlier Exposure"): a
small network (one hidden layer) on the same features learns garments (training items and rendered training
photos) against pictures of things that are not garments (fmnist.photo.outliers). Photographed garments sit far
from the data set's class means, as do most things; the head learns where things differ, so that the
Mahalanobis limit can let photographed garments through.

A second head of the same kind learns garments against handwritten digits photographed on paper
(fmnist.photo.render.written): digits drawn large pass for trousers, bags and sandals in the 28x28, and a head of
their own catches them without moving the first head's line between garments and other things
(lab/README.md, `digit_head`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from fmnist.data import to_float

DETECTOR_NAME = "detector.safetensors"
FIT_IMAGES = 20_000  # training images used for the class means and covariance: plenty for D <= 1024
# The outlier heads are small networks: one hidden layer of this many ReLU units, this L2 penalty, this many passes
# at most. Chosen on validation against the logistic regressions they replace (python -m lab.pale_notice, default
# model, shipped pass rates; lab/results/pale-notice-val-cpu.json): validation items given a notice 1.47 -> 1.07 %,
# the photo data's validation photos 3.38 -> 2.75 %, the 296 validation non-garments flagged 97.0 -> 98.3 %
# (scenes and edge objects missed 5 -> 2), 800 pale validation photos 1.9 -> 2.0 %. Seeds 1 and 2 gave
# 97.6 % of the non-garments and 2.4-2.8 % of the pale photos.
OUTLIER_HEAD_HIDDEN = 32
OUTLIER_HEAD_ALPHA = 1e-2
OUTLIER_HEAD_EPOCHS = 300


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


def standardised(
    garments: torch.Tensor, things: torch.Tensor
) -> tuple[np.ndarray, np.ndarray, torch.Tensor, torch.Tensor]:
    """What an outlier head learns from: the features of both sides standardised (N, D), their labels (0 a garment,
    1 a thing), and the mean and scale that standardised them, which the head stores to score new features."""
    x = torch.cat([garments, things]).double()
    y = torch.cat([torch.zeros(len(garments)), torch.ones(len(things))]).numpy()
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-6)
    return ((x - mean) / scale).numpy(), y, mean, scale


def fit_outlier_head(garments: torch.Tensor, things: torch.Tensor, head: str = "oe") -> dict[str, torch.Tensor]:
    """Standardisation and the weights of a small network, named head_*: one hidden layer of OUTLIER_HEAD_HIDDEN
    ReLU units with an L2 penalty of OUTLIER_HEAD_ALPHA, seeded so that a refit gives the same head. A positive
    score says "a thing, not a garment" ("oe": the things of fmnist.photo.outliers; "digit": the photographed
    digits)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    z, y, mean, scale = standardised(garments, things)
    clf = MLPClassifier((OUTLIER_HEAD_HIDDEN,), alpha=OUTLIER_HEAD_ALPHA, max_iter=OUTLIER_HEAD_EPOCHS, random_state=0)
    with warnings.catch_warnings():  # OUTLIER_HEAD_EPOCHS is a cap by choice: a head that has not settled by then stops
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(z, y)
    return {
        f"{head}_mean": mean,
        f"{head}_scale": scale,
        f"{head}_hidden_weight": torch.from_numpy(clf.coefs_[0].T.copy()),
        f"{head}_hidden_bias": torch.from_numpy(clf.intercepts_[0].copy()),
        f"{head}_weight": torch.from_numpy(clf.coefs_[1][:, 0].copy()),
        f"{head}_bias": torch.from_numpy(clf.intercepts_[1].copy()),
    }


def outlier_scores(feats: torch.Tensor, stats: dict[str, torch.Tensor], head: str = "oe") -> torch.Tensor | None:
    """(N,) the named outlier head's logit of "not a garment", or None for a detector without that head. Heads
    fitted before 2026-12-07 are a logistic regression on the features, without the hidden layer; they still load
    and score."""
    if f"{head}_weight" not in stats:
        return None
    z = (feats.double() - stats[f"{head}_mean"]) / stats[f"{head}_scale"]
    if f"{head}_hidden_weight" in stats:
        z = torch.relu(z @ stats[f"{head}_hidden_weight"].T + stats[f"{head}_hidden_bias"])
    return z @ stats[f"{head}_weight"] + stats[f"{head}_bias"][0]


def digit_scores(feats: torch.Tensor, stats: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """(N,) the digit head's logit of "a handwritten digit, not a garment", or None without that head."""
    return outlier_scores(feats, stats, "digit")


def as_stored(stats: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The statistics as the file keeps them, back in float64: bfloat16 (float32's range), and of the symmetric
    precision matrix only its upper triangle (the MobileNet's 1024x1024 is 1 MB instead of 4). Thresholds are set
    with these, so they match what the app loads."""
    stored = {k: v.to(torch.bfloat16).double() for k, v in stats.items()}
    if "precision" in stored:
        stored["precision"] = _symmetric(stored["precision"])
    return stored


def _symmetric(matrix: torch.Tensor) -> torch.Tensor:
    """The symmetric matrix its upper triangle gives."""
    upper = matrix.triu()
    return upper + upper.triu(1).T


def save_detector(folder: Path, stats: dict[str, torch.Tensor]) -> None:
    from safetensors.torch import save

    from fmnist.checkpoints.store import atomic_write_bytes

    stored = dict(stats)
    if "precision" in stored:
        p = stored.pop("precision")
        rows, cols = torch.triu_indices(len(p), len(p))
        stored["precision_upper"] = p[rows, cols]
    atomic_write_bytes(
        Path(folder) / DETECTOR_NAME,
        save({k: v.to(torch.bfloat16).contiguous() for k, v in stored.items()}, metadata={"detector": "mahalanobis"}),
    )


def load_detector(folder: Path) -> dict[str, torch.Tensor] | None:
    """The stored statistics, or None for a checkpoint made before the detector existed. The precision matrix is
    stored as its upper triangle (files of before 2026-12-07 hold it whole)."""
    from safetensors.torch import load_file

    path = Path(folder) / DETECTOR_NAME
    if not path.is_file():
        return None
    stats = {k: v.double() for k, v in load_file(path).items()}
    if "precision_upper" in stats:
        upper = stats.pop("precision_upper")
        d = int((np.sqrt(8 * len(upper) + 1) - 1) / 2)
        rows, cols = torch.triu_indices(d, d)
        p = torch.zeros(d, d, dtype=upper.dtype)
        p[rows, cols] = upper
        stats["precision"] = _symmetric(p)
    return stats
