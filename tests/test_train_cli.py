"""train.py end to end, as a user runs it: a real subprocess on the real IDX files."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, needs_real_data, real_data_dir
from fmnist import checkpoint, hub, metrics
from fmnist.data import load_splits

pytestmark = needs_real_data
QUICK = ["--models", "deep_cnn", "--limit", "1000", "--batch-size", "128"]


def train_cmd(*args):
    return [sys.executable, str(ROOT / "train.py"), "--data-dir", str(real_data_dir()), *args]


def run_train(*args, check=True):
    proc = subprocess.run(train_cmd(*args), capture_output=True, text=True, timeout=600, cwd=ROOT)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_one_epoch_run_writes_a_checkpoint_that_reloads_to_the_same_results(tmp_path):
    run_train(*QUICK, "--epochs", "1", "--out", str(tmp_path))
    folder = tmp_path / "deep_cnn"
    expected = {"model.safetensors", "config.json", "metrics.json", "confusion_matrix.png", "curves.png",
                "misclassified.png", "inference_grid.png"}
    assert expected <= {p.name for p in folder.iterdir()}
    assert not (folder / "train_state.pt").exists()
    model, config = checkpoint.load_folder(folder)
    recorded = json.loads((folder / "metrics.json").read_text())
    splits = load_splits(real_data_dir(), limit=1000, seed=0, allow_download=False)
    logits = metrics.predict_logits(model, splits.test.images)
    again = metrics.classification_metrics(logits, splits.test.labels, config["temperature"])
    assert again["accuracy"] == recorded["test"]["accuracy"]
    assert again["log_loss"] == pytest.approx(recorded["test"]["log_loss"], abs=1e-6)
    assert config["architecture"] == "deep_cnn" and config["seed"] == 0
    assert config["initialization"].startswith("random") and config["temperature"] > 0
    assert {"torch", "timm"} <= set(config["versions"])
    assert json.loads((tmp_path / "results.json").read_text())[0]["model"] == "deep_cnn"


def test_resume_after_a_kill_finishes_like_an_uninterrupted_run(tmp_path):
    args = [*QUICK, "--epochs", "3", "--patience", "10"]
    run_train(*args, "--out", str(tmp_path / "whole"))

    state = tmp_path / "cut" / "deep_cnn" / "train_state.pt"
    proc = subprocess.Popen(train_cmd(*args, "--out", str(tmp_path / "cut")), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not state.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be interrupted"
    interrupted_at = torch.load(state, weights_only=True)["run"]["epoch"]
    assert 1 <= interrupted_at < 3
    assert not (tmp_path / "cut" / "deep_cnn" / "metrics.json").exists()

    run_train(*args, "--out", str(tmp_path / "cut"), "--resume")
    whole = json.loads((tmp_path / "whole" / "deep_cnn" / "metrics.json").read_text())
    cut = json.loads((tmp_path / "cut" / "deep_cnn" / "metrics.json").read_text())
    assert [h["epoch"] for h in cut["history"]] == [1, 2, 3]
    for a, b in zip(whole["history"], cut["history"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-5)
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-5)
    assert cut["test"]["accuracy"] == whole["test"]["accuracy"]
    w1 = load_file(tmp_path / "whole" / "deep_cnn" / "model.safetensors")
    w2 = load_file(tmp_path / "cut" / "deep_cnn" / "model.safetensors")
    assert all(torch.allclose(w1[k], w2[k], atol=1e-5) for k in w1)


def test_resume_refuses_a_run_with_other_settings(tmp_path):
    state = tmp_path / "deep_cnn" / "train_state.pt"
    proc = subprocess.Popen(train_cmd(*QUICK, "--epochs", "3", "--out", str(tmp_path)), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not state.exists() and proc.poll() is None:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    out = run_train(*QUICK, "--epochs", "3", "--lr", "0.01", "--out", str(tmp_path), "--resume", check=False)
    assert out.returncode != 0 and "written by a run with other settings" in out.stderr


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs: must be positive"),
    (["--models", "mlp,vgg"], "unknown model(s) vgg"),
    (["--batch-size", "many"], "expected a whole number"),
    (["--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["--erase-p", "2"], "--erase-p must be in [0, 1]"),
    (["--model-args", "{bad"], "not valid JSON"),
    (["--pretrained-file", "/nope.safetensors"], "does not exist"),
    (["--pretrained-file", __file__, "--no-pretrained"], "contradict each other"),
])
def test_bad_flags_get_a_clear_message(args, message):
    out = run_train(*args, check=False)
    assert out.returncode == 2 and message in out.stderr


def test_mobilenet_without_weights_stops_with_advice(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # as here: the Hub cannot be reached
    out = subprocess.run(train_cmd("--models", "mobilenet", "--limit", "200", "--epochs", "1", "--out", str(tmp_path)),
                         capture_output=True, text=True, env=env, timeout=300, cwd=ROOT)
    assert out.returncode == 2
    assert "--pretrained-file" in out.stderr and "--no-pretrained" in out.stderr
    assert not (tmp_path / "mobilenet" / "model.safetensors").exists()


def test_mobilenet_from_random_init_is_labelled_so(tmp_path):
    run_train("--models", "mobilenet", "--no-pretrained", "--limit", "300", "--epochs", "1", "--out", str(tmp_path))
    config = json.loads((tmp_path / "mobilenet" / "config.json").read_text())
    assert config["pretrained"] is False and "NOT a transfer model" in config["initialization"]


def test_baselines_write_their_table(tmp_path):
    out = run_train("--baselines", "--limit", "1000", "--out", str(tmp_path))
    rows = json.loads((tmp_path / "baselines.json").read_text())
    assert [r["model"] for r in rows] == ["logistic_regression", "linear_svm", "random_forest"]
    assert all(0.6 < r["test_acc"] <= 1 and r["fit_seconds"] > 0 for r in rows)
    assert "| random_forest |" in out.stdout
    overview = out.stdout.split("All models in")[1]
    assert "| logistic_regression | scikit-learn |" in overview


def test_torchrun_ddp_on_cpu_gives_the_same_kind_of_checkpoint(tmp_path):
    """`torchrun --nproc_per_node=2 train.py ...` with the gloo backend, beside a single-process run."""
    args = ["--models", "deep_cnn", "--limit", "800", "--epochs", "1", "--data-dir", str(real_data_dir())]
    run_train(*QUICK[:2], *args[2:], "--out", str(tmp_path / "single"))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(ROOT / "train.py"), *args, "--out", str(tmp_path / "ddp")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    single, ddp = tmp_path / "single" / "deep_cnn", tmp_path / "ddp" / "deep_cnn"
    assert {p.name for p in single.iterdir()} == {p.name for p in ddp.iterdir()}
    m1, c1 = checkpoint.load_folder(single)
    m2, c2 = checkpoint.load_folder(ddp)
    assert m1.state_dict().keys() == m2.state_dict().keys()  # no "module." prefixes from the DDP wrapper
    assert c2["world_size"] == 2 and "DistributedDataParallel" in c2["device"]
    recorded = json.loads((ddp / "metrics.json").read_text())
    splits = load_splits(real_data_dir(), limit=800, seed=0, allow_download=False)
    again = metrics.classification_metrics(metrics.predict_logits(m2, splits.test.images), splits.test.labels,
                                           c2["temperature"])
    assert again["accuracy"] == recorded["test"]["accuracy"]


def test_mobilenet_from_a_local_weights_file_is_labelled_pretrained(tmp_path):
    import timm
    from safetensors.torch import save_file

    weights = tmp_path / "mobilenetv3_small_100.safetensors"  # stands in for a downloaded ImageNet file
    save_file({k: v.contiguous() for k, v in timm.create_model("mobilenetv3_small_100").state_dict().items()}, weights)
    run_train("--models", "mobilenet", "--pretrained-file", str(weights), "--limit", "300", "--epochs", "1",
              "--out", str(tmp_path / "out"))
    config = json.loads((tmp_path / "out" / "mobilenet" / "config.json").read_text())
    assert config["pretrained"] is True and weights.name in config["initialization"]
    assert config["train_config"]["pretrained_file"] == str(weights)
