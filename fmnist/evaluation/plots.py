"""PNG figures for a trained model: confusion matrix, training curves, misclassified and random test images."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fmnist import CLASS_NAMES  # noqa: E402


def short_names(class_names=CLASS_NAMES) -> list[str]:
    return [n.split("/")[0] for n in class_names]


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, pil_kwargs={"optimize": True})  # lossless, a tenth smaller
    plt.close(fig)
    tmp.replace(path)
    return path


def confusion_matrix(cm: list[list[int]], path: Path, title: str = "", class_names=CLASS_NAMES) -> Path:
    cm = np.asarray(cm)
    short = short_names(class_names)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(10), short, rotation=45, ha="right")
    ax.set_yticks(range(10), short)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or "Confusion matrix (test set)")
    for i in range(10):
        for j in range(10):
            ax.text(
                j,
                i,
                cm[i, j],
                ha="center",
                va="center",
                fontsize=8,
                color="white" if cm[i, j] > cm.max() / 2 else "black",
            )
    return _save(fig, path)


def training_curves(history: list[dict], path: Path, title: str = "") -> Path:
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train (label-smoothed, augmented)")
    ax1.plot(epochs, [h["val_loss"] for h in history], label="validation")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    ax2.plot(epochs, [h["train_acc"] for h in history], label="train (augmented)")
    ax2.plot(epochs, [h["val_acc"] for h in history], label="validation")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("accuracy")
    ax2.legend()
    fig.suptitle(title)
    return _save(fig, path)


def image_grid(
    images: np.ndarray,
    true: np.ndarray,
    pred: np.ndarray,
    path: Path,
    title: str,
    cols: int = 8,
    class_names=CLASS_NAMES,
) -> Path:
    """Images (N, 28, 28) uint8 with 'P: predicted / T: true' captions, wrong ones in red.

    One axes shows the images as a mosaic with a caption band above each: 32 separate axes took ~1 s each to
    lay out and draw, a third of a quick run's time."""
    short = short_names(class_names)
    n = len(images)
    rows = max(1, -(-n // cols))
    cell_w, cell_h, band = 32, 44, 14  # pixels of the mosaic: a 28x28 image, its margin and the caption band
    mosaic = np.full((rows * cell_h, cols * cell_w), 255, dtype=np.uint8)
    fig, ax = plt.subplots(figsize=(cols * 1.4, rows * 1.6 + 0.4))
    for k, (img, t, p) in enumerate(zip(images, true, pred)):
        r, c = divmod(k, cols)
        y, x = r * cell_h + band, c * cell_w + 2
        mosaic[y : y + 28, x : x + 28] = img
        ax.text(
            x + 14,
            y - 1,
            f"P: {short[p]}\nT: {short[t]}",
            fontsize=7,
            ha="center",
            va="bottom",
            color="black" if p == t else "red",
        )
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.axis("off")
    ax.set_title(title)
    return _save(fig, path)


def write_all(
    folder: Path,
    metrics: dict,
    history: list[dict],
    images: np.ndarray,
    labels: np.ndarray,
    preds: np.ndarray,
    name: str,
    seed: int = 0,
    class_names=CLASS_NAMES,
) -> list[str]:
    """Write the four standard figures into folder; return their file names."""
    rng = np.random.default_rng(seed)
    wrong = np.flatnonzero(preds != labels)
    wrong = rng.choice(wrong, size=min(32, len(wrong)), replace=False) if len(wrong) else wrong
    sample = rng.choice(len(labels), size=min(32, len(labels)), replace=False)
    acc = metrics["accuracy"] * 100
    paths = [
        confusion_matrix(
            metrics["confusion_matrix"],
            folder / "confusion_matrix.png",
            f"{name}: confusion matrix, test accuracy {acc:.2f} %",
            class_names,
        ),
        image_grid(
            images[wrong],
            labels[wrong],
            preds[wrong],
            folder / "misclassified.png",
            f"{name}: misclassified test images (P: predicted, T: true)",
            class_names=class_names,
        ),
        image_grid(
            images[sample],
            labels[sample],
            preds[sample],
            folder / "inference_grid.png",
            f"{name}: random test images",
            class_names=class_names,
        ),
    ]
    if history:
        paths.append(training_curves(history, folder / "curves.png", f"{name}: training curves"))
    return [p.name for p in paths]
