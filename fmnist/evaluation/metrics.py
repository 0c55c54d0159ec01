"""Evaluation: logits in batches, scikit-learn metrics, temperature scaling and calibration error."""

from __future__ import annotations

import numpy as np
import torch
from sklearn import metrics as skm

from fmnist import CLASS_NAMES
from fmnist.data import to_float


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, images_uint8: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Logits (N, 10) as float32 on the CPU for (N, 28, 28) uint8 images, in eval mode, batched.

    The model's train/eval mode is restored afterwards."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    use_bf16 = dev.type == "cuda"
    out = []
    try:
        for i in range(0, len(images_uint8), batch_size):
            x = to_float(images_uint8[i : i + batch_size].to(dev))
            if use_bf16:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=use_bf16):
                out.append(model(x).float())
    finally:
        model.train(was_training)
    return torch.cat(out).cpu()


def softmax(logits: np.ndarray | torch.Tensor, temperature: float = 1.0) -> np.ndarray:
    z = torch.as_tensor(logits, dtype=torch.float64) / temperature
    return torch.softmax(z, dim=1).numpy()


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE with equal-width confidence bins: sum over bins of |accuracy - confidence| * bin share."""
    conf = probs.max(1)
    correct = probs.argmax(1) == labels
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        in_bin = (conf > lo) & (conf <= hi)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return float(ece)


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 100) -> float:
    """The temperature T minimising the NLL of softmax(logits / T) on held-out data (Guo et al. 2017)."""
    logits = torch.as_tensor(logits, dtype=torch.float64)
    labels = torch.as_tensor(labels, dtype=torch.long)
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)  # optimise log T so that T > 0
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    return float(log_t.exp().item())


def classification_metrics(
    logits: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    temperature: float = 1.0,
    class_names=CLASS_NAMES,
) -> dict:
    """Accuracy, per-class and averaged precision/recall/F1, MCC, log loss, ECE and the confusion matrix."""
    labels = np.asarray(torch.as_tensor(labels).cpu())
    probs = softmax(logits, temperature)
    preds = probs.argmax(1)
    classes = list(range(len(class_names)))
    report = skm.classification_report(
        labels, preds, labels=classes, target_names=list(class_names), output_dict=True, zero_division=0
    )
    per_class = {
        name: {k: report[name][k] for k in ("precision", "recall", "f1-score", "support")} for name in class_names
    }
    return {
        "n": int(len(labels)),
        "accuracy": float(skm.accuracy_score(labels, preds)),
        "per_class": per_class,
        "macro_avg": {k: report["macro avg"][k] for k in ("precision", "recall", "f1-score")},
        "weighted_avg": {k: report["weighted avg"][k] for k in ("precision", "recall", "f1-score")},
        "mcc": float(skm.matthews_corrcoef(labels, preds)),
        "log_loss": float(skm.log_loss(labels, probs, labels=classes)),
        "ece": expected_calibration_error(probs, labels),
        "confusion_matrix": skm.confusion_matrix(labels, preds, labels=classes).tolist(),
    }
