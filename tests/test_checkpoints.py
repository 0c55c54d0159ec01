"""The bundled checkpoints/ folder: produced by train.py, small enough for Spaces, and each one's recorded
test accuracy is what evaluating it on the real test set gives."""

import json

import pytest

from conftest import ROOT, needs_real_data, real_data_dir
from fmnist.checkpoints import store
from fmnist.data import load_splits
from fmnist.evaluation import metrics
from fmnist.models.registry import DEFAULT_MODELS

CHECKPOINTS = ROOT / "checkpoints"
FOLDERS = store.model_folders(CHECKPOINTS)


def test_every_model_is_bundled():
    # the wide resnet joins checkpoints/ once a GPU has trained it (scripts/gpu_train.sh); nothing else is left out
    assert set(DEFAULT_MODELS) <= {f.name for f in FOLDERS}


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.name)
def test_files_are_small_and_complete(folder):
    for f in folder.iterdir():
        assert f.stat().st_size < 10 * 1024 * 1024, f"{f} is over 10 MB (Spaces would need LFS)"
    assert (folder / "metrics.json").is_file() and not (folder / "train_state.pt").exists()
    config = json.loads((folder / "config.json").read_text())
    assert config["git_commit"] and config["versions"]["torch"]  # written by train.py, not by hand
    if folder.name == "mobilenet":
        # a MobileNet without ImageNet weights must say so wherever it shows
        assert config["pretrained"] == config["initialization"].startswith("ImageNet weights")
        assert config["pretrained"] or "NOT a transfer model" in config["initialization"]


@pytest.fixture(scope="module")
def test_split():
    return load_splits(real_data_dir(), allow_download=False).test


@needs_real_data
@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f.name)
def test_recorded_accuracy_is_what_evaluation_gives(folder, test_split):
    model, config = store.load_folder(folder)
    recorded = json.loads((folder / "metrics.json").read_text())
    assert recorded["test"]["n"] == len(test_split) == 10_000  # the full test set, not a --limit run
    got = metrics.classification_metrics(
        metrics.predict_logits(model, test_split.images), test_split.labels, config["temperature"]
    )
    assert abs(got["accuracy"] - recorded["test"]["accuracy"]) <= 0.001
    assert abs(got["mcc"] - recorded["test"]["mcc"]) <= 0.002
