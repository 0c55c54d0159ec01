import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from fmnist.evaluation.metrics import classification_metrics, expected_calibration_error, fit_temperature, softmax


@pytest.fixture
def example():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 20)
    logits = rng.normal(size=(200, 10)) + 3.0 * np.eye(10)[labels] * (rng.random(200) > 0.3)[:, None]
    return logits.astype(np.float32), labels


def test_metrics_equal_sklearn(example):
    logits, labels = example
    m = classification_metrics(logits, labels)
    preds = logits.argmax(1)
    probs = softmax(logits)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(labels, preds))
    assert m["mcc"] == pytest.approx(skm.matthews_corrcoef(labels, preds))
    assert m["log_loss"] == pytest.approx(skm.log_loss(labels, probs))
    assert m["macro_avg"]["f1-score"] == pytest.approx(skm.f1_score(labels, preds, average="macro"))
    assert m["weighted_avg"]["precision"] == pytest.approx(skm.precision_score(labels, preds, average="weighted"))
    p, r, f, _ = skm.precision_recall_fscore_support(labels, preds)
    assert m["per_class"]["Shirt"]["recall"] == pytest.approx(r[6])
    assert m["per_class"]["Bag"]["f1-score"] == pytest.approx(f[8])
    assert m["confusion_matrix"] == skm.confusion_matrix(labels, preds).tolist()


def test_ece_by_hand():
    # two confident right answers (0.9) and two unsure wrong ones (0.6): |1-0.9|*0.5 + |0-0.6|*0.5
    probs = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 0, 1, 1])
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(0.35)


def test_fit_temperature_recovers_a_known_temperature():
    torch.manual_seed(0)
    true_logits = torch.randn(20000, 10) * 3
    labels = torch.distributions.Categorical(logits=true_logits).sample()
    t = fit_temperature(true_logits * 2.5, labels)  # over-confident by a factor 2.5
    assert t == pytest.approx(2.5, rel=0.05)
