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

from conftest import ROOT, kill_once_saved, needs_real_data, real_data_dir
from fmnist.checkpoints import store
from fmnist.data import load_splits
from fmnist.evaluation import metrics

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
    expected = {
        "model.safetensors",
        "config.json",
        "metrics.json",
        "confusion_matrix.png",
        "curves.png",
        "misclassified.png",
        "inference_grid.png",
    }
    assert expected <= {p.name for p in folder.iterdir()}
    assert not (folder / "train_state.pt").exists()
    model, config = store.load_folder(folder)
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
    args = [*QUICK, "--epochs", "3", "--params", '{"patience": 10}']
    run_train(*args, "--out", str(tmp_path / "whole"))

    state = tmp_path / "cut" / ".partial" / "deep_cnn" / "train_state.pt"  # unfinished runs are staged
    proc = subprocess.Popen(
        train_cmd(*args, "--out", str(tmp_path / "cut")), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    kill_once_saved(proc, state)
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
    state = tmp_path / ".partial" / "deep_cnn" / "train_state.pt"
    proc = subprocess.Popen(
        train_cmd(*QUICK, "--epochs", "3", "--out", str(tmp_path)),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    while not state.exists() and proc.poll() is None:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    out = run_train(*QUICK, "--epochs", "3", "--lr", "0.01", "--out", str(tmp_path), "--resume", check=False)
    assert out.returncode != 0 and "written by a run with other settings" in out.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--epochs", "0"], "--epochs: must be positive"),
        (["--models", "mlp,vgg"], "unknown model(s) vgg"),
        (["--batch-size", "many"], "expected a whole number"),
        (["--params", '{"optimizer": "rmsprop"}'], "optimizer (--params) must be one of adamw, sgd"),
        (["--params", '{"patients": 3}'], "not TrainConfig fields: patients"),
        (["--bend-p", "0.3"], "unrecognized arguments: --bend-p"),
        (["--erase-p", "2"], "--erase-p must be in [0, 1]"),
        (["--photo-p", "-0.1"], "--photo-p must be in [0, 1]"),
        (["--model-args", "{bad"], "not valid JSON"),
        (["--pretrained-file", "/nope.safetensors"], "does not exist"),
        (["--pretrained-file", __file__, "--no-pretrained"], "contradict each other"),
    ],
)
def test_bad_flags_get_a_clear_message(args, message):
    out = run_train(*args, check=False)
    assert out.returncode == 2 and message in out.stderr


@pytest.mark.parametrize("offline", ["1", "0"], ids=["HF_HUB_OFFLINE", "no network"])
def test_missing_mobilenet_weights_stop_the_run_before_any_training(tmp_path, offline):
    """Checked before the first epoch: the models listed before the MobileNet are not trained, and there is
    no retry storm (huggingface_hub would retry for ~50 s and log every retry)."""
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": offline,
        "HF_HUB_CACHE": str(tmp_path / "empty-cache"),
        "HF_ENDPOINT": "http://127.0.0.1:9",
    }  # nothing listens on port 9: the Hub cannot be reached
    out = subprocess.run(
        train_cmd("--models", "mlp,mobilenet", "--limit", "200", "--epochs", "1", "--out", str(tmp_path / "out")),
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 2
    assert "--pretrained-file" in out.stderr and "--no-pretrained" in out.stderr
    assert "Retrying" not in out.stderr and "mlp: " not in out.stderr  # no retries, nothing trained
    assert not (tmp_path / "out" / "mlp").exists() and not (tmp_path / "out" / "results.json").exists()


def _readme_quick_command() -> list[str]:
    """The quick smoke run exactly as README.md writes it (the line marked 'a quick smoke run')."""
    import shlex

    line = next(
        line
        for line in (ROOT / "README.md").read_text().splitlines()
        if line.startswith("python train.py") and "quick smoke run" in line
    )
    return shlex.split(line.split("#")[0])


def _tree_digest(folder) -> dict:
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_the_readme_quick_run_leaves_the_bundled_checkpoints_untouched(tmp_path):
    """As a new user would: the README's quick command, exactly as written, in a fresh copy of the project."""
    import shutil

    clone = tmp_path / "clone"
    tracked = subprocess.run(["git", "ls-files"], capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()
    for rel in tracked:
        if (ROOT / rel).is_file():
            (clone / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, clone / rel)
    before = _tree_digest(clone / "checkpoints")
    cmd = _readme_quick_command()
    assert cmd[:2] == ["python", "train.py"] and "--limit" in cmd
    proc = subprocess.run(
        [sys.executable, *cmd[1:]],
        capture_output=True,
        text=True,
        cwd=clone,
        timeout=600,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _tree_digest(clone / "checkpoints") == before
    results = json.loads((clone / "runs" / "fashion-mnist" / "results.json").read_text())
    assert {r["model"] for r in results} == {"mlp", "basic_cnn", "deep_cnn", "resnet", "mobilenet"}


def test_limit_runs_are_refused_into_the_bundled_checkpoints():
    out = run_train(
        "--models", "mlp", "--limit", "500", "--epochs", "1", "--out", str(ROOT / "checkpoints"), check=False
    )
    assert out.returncode == 2 and "never written into the bundled" in out.stderr


@pytest.mark.parametrize(
    "out, args, message",
    [
        # a subfolder, however it is spelled: the guard once compared the path with checkpoints/ alone
        ("checkpoints/basic_cnn", ["--limit", "500"], "never written into the bundled"),
        ("checkpoints/../checkpoints/basic_cnn/", ["--limit", "500"], "never written into the bundled"),
        ("./checkpoints/mlp/x", [], "inside the bundled checkpoints/"),
        ("checkpoints", ["--models", "mlp", "--epochs", "1"], "shorter than the full run of mlp (20 epochs)"),
        ("checkpoints/.", ["--models", "resnet,mlp", "--epochs", "25"], "full run of resnet (30 epochs): a bundled"),
    ],
)
def test_short_runs_cannot_write_into_the_bundled_checkpoints(out, args, message, capsys, monkeypatch):
    import train

    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as stop:
        train.parse_args(["--out", out, *args])
    err = " ".join(capsys.readouterr().err.split())  # argparse wraps its message
    assert stop.value.code == 2 and message in err
    if "--epochs" in args:
        assert "--force" in err  # the refusal names the flag that overrides it


def test_force_lets_a_full_run_be_short_and_a_run_outside_checkpoints_needs_nothing(monkeypatch):
    import train

    monkeypatch.chdir(ROOT)
    cfg, _ = train.parse_args(["--out", "checkpoints", "--models", "mlp", "--epochs", "1", "--force"])
    assert cfg.force and cfg.epochs == 1
    cfg, _ = train.parse_args(["--out", "runs/x", "--models", "mlp", "--epochs", "1"])
    assert not cfg.force


@pytest.mark.parametrize(
    "new_acc, force, adopted", [(0.8, False, False), (0.95, False, True), (0.9, False, True), (0.8, True, True)]
)
def test_a_model_worse_on_validation_does_not_replace_the_bundled_one(tmp_path, monkeypatch, new_acc, force, adopted):
    """The check fit() makes before it puts a finished folder in place: the two validation figures, the
    refused model kept in runs/not-adopted/, and --force."""
    from fmnist.training.config import TrainConfig
    from fmnist.training.finish import _bundled_refusal

    bundled = tmp_path / "checkpoints"
    (bundled / "mlp").mkdir(parents=True)
    (bundled / "mlp" / "metrics.json").write_text(json.dumps({"val": {"accuracy": 0.9}}))
    staged = bundled / ".partial" / "mlp"
    staged.mkdir(parents=True)
    (staged / "metrics.json").write_text(json.dumps({"val": {"accuracy": new_acc}}))
    monkeypatch.setattr(store, "BUNDLED", bundled)
    monkeypatch.chdir(tmp_path)
    refusal = _bundled_refusal(TrainConfig(models=["mlp"], out=str(bundled), force=force), "mlp", staged)
    if adopted:
        assert refusal is None and staged.is_dir()
    else:
        assert "80.00 %" in refusal and "90.00 %" in refusal and "--force" in refusal
        assert not staged.exists() and (tmp_path / "runs" / "not-adopted" / "mlp" / "metrics.json").is_file()
    assert json.loads((bundled / "mlp" / "metrics.json").read_text())["val"]["accuracy"] == 0.9


def test_a_run_killed_after_one_model_leaves_folders_results_and_card_consistent(tmp_path):
    """mlp finishes, then the run is killed during deep_cnn: mlp's folder, results.json and the card agree,
    and no half-trained deep_cnn folder is there to be served."""
    root = tmp_path / "out"
    proc = subprocess.Popen(
        train_cmd("--models", "mlp,deep_cnn", "--limit", "1000", "--epochs", "3", "--out", str(root)),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (root / "README.md").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be interrupted"
    assert [f.name for f in store.model_folders(root)] == ["mlp"]
    assert [r["model"] for r in json.loads((root / "results.json").read_text())] == ["mlp"]
    card = (root / "README.md").read_text()
    assert "`mlp`" in card and "`deep_cnn`" not in card
    assert not (root / "deep_cnn").exists()


def test_an_unreadable_weights_file_is_refused_before_training(tmp_path):
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"not a safetensors file")
    out = run_train(
        "--models",
        "mlp,mobilenet",
        "--pretrained-file",
        str(bad),
        "--limit",
        "300",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "out"),
        check=False,
    )
    assert out.returncode == 2 and "cannot be read as safetensors" in out.stderr
    assert not (tmp_path / "out" / "mlp").exists()


@pytest.mark.parametrize("total_steps", [1, 2, 7, 8, 100])
def test_the_schedule_survives_runs_of_a_few_steps(total_steps):
    """A tiny --limit with a large batch gives one or two steps an epoch: OneCycleLR divided by zero there
    (seen in a search trial with batch 512 on 300 images)."""
    from fmnist.training.config import TrainConfig
    from fmnist.training.loop import _scheduler

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = _scheduler(opt, TrainConfig(), 0.1, total_steps)
    for _ in range(total_steps):
        opt.step()
        sched.step()
    assert all(0 <= lr <= 0.1 + 1e-9 for lr in sched.get_last_lr())


def convert_cli(*args):
    cmd = [sys.executable, "-m", "fmnist.checkpoints", "convert", "--data-dir", str(real_data_dir()), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_weights_converted_to_float16_are_kept_with_figures_that_evaluation_gives(tmp_path):
    run_train("--models", "mlp", "--limit", "1000", "--epochs", "1", "--out", str(tmp_path))
    folder = tmp_path / "mlp"
    size32 = (folder / "model.safetensors").stat().st_size
    proc = convert_cli("--dtype", "float16", "--models", "mlp", "--out", str(tmp_path))
    assert "kept" in proc.stdout
    assert (folder / "model.safetensors").stat().st_size < 0.55 * size32
    assert {v.dtype for v in load_file(folder / "model.safetensors").values()} == {torch.float16}
    model, config = store.load_folder(folder)
    recorded = json.loads((folder / "metrics.json").read_text())
    assert config["weights_dtype"] == "float16" and recorded["converted"]["from"] == "float32"
    splits = load_splits(real_data_dir(), limit=1000, seed=0, allow_download=False)
    again = metrics.classification_metrics(
        metrics.predict_logits(model, splits.test.images), splits.test.labels, config["temperature"]
    )
    assert again["accuracy"] == recorded["test"]["accuracy"]
    assert abs(again["accuracy"] - recorded["converted"]["test_accuracy_before"]) <= 0.0005
    stored = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    proc = convert_cli("--dtype", "float16", "--models", "mlp", "--out", str(tmp_path))
    assert "mlp        already float16; left as it is" in proc.stdout  # a second conversion keeps the history
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == stored


def test_a_conversion_that_costs_accuracy_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    from fmnist.checkpoints import convert
    from fmnist.training.config import TrainConfig

    run_train("--models", "mlp", "--limit", "1000", "--epochs", "1", "--out", str(tmp_path))
    weights = (tmp_path / "mlp" / "model.safetensors").read_bytes()
    monkeypatch.setattr(convert, "TOLERANCE", -1.0)  # any change at all counts as a loss
    rows = convert.convert_weights(
        TrainConfig(models=["mlp"], out=str(tmp_path), weights_dtype="float16", data_dir=str(real_data_dir()))
    )
    assert rows[0]["kept"] is False
    assert (tmp_path / "mlp" / "model.safetensors").read_bytes() == weights
    assert json.loads((tmp_path / "mlp" / "config.json").read_text())["weights_dtype"] == "float32"


def test_the_notice_is_fitted_on_rendered_photos_things_and_digits_and_set_on_validation(tmp_path):
    """The not-a-garment detector of a run sees what the model sees of photographed garments: its statistics
    include the rendered training photos, and an outlier head learns them against pictures of things. Each limit
    lets through its share of the rendered validation photos (the held-out renderer plays no part) and at least
    98 % of the validation items. A --limit run without --photo-data fits on the data set alone."""
    import numpy as np

    from fmnist.notice import detector, fitting
    from fmnist.photo import outliers
    from fmnist.photo.cache import DEFAULT_PATH, load_photo_data

    run_train("--models", "mlp", "--limit", "1000", "--epochs", "1", "--out", str(tmp_path / "plain"))
    plain = store.load_folder(tmp_path / "plain" / "mlp")[1]["notice_threshold"]
    assert "fit_photos" not in plain and "outlier" not in plain
    assert set(detector.load_detector(tmp_path / "plain" / "mlp")) == {"means", "precision"}

    run_train(
        "--models",
        "mlp",
        "--limit",
        "1000",
        "--epochs",
        "1",
        "--photo-data",
        str(DEFAULT_PATH),
        "--out",
        str(tmp_path / "photos"),
    )
    model, config = store.load_folder(tmp_path / "photos" / "mlp")
    entry = config["notice_threshold"]
    photo, (things, digest) = load_photo_data(DEFAULT_PATH), outliers.load()
    digits, digits_digest = outliers.load(outliers.DIGITS_PATH)
    assert entry["fit_photos"] == len(photo.train) and entry["photo_data"] == photo.digest
    assert entry["fit_things"] == len(things) and entry["things"] == digest
    assert entry["fit_digits"] == len(digits) and entry["digits"] == digits_digest
    stats = detector.load_detector(tmp_path / "photos" / "mlp")
    used = ~np.isin(photo.val["renderer"], photo.meta["held_out"]) & (photo.val["images"].max(axis=(1, 2)) > 0)
    assert entry["val_photos"] == int(used.sum())
    feats = detector.penultimate_features(model, torch.from_numpy(photo.val["images"][used]))
    for rule, score, rate in (
        ("mahalanobis", detector.mahalanobis_scores, fitting.MAHALANOBIS_PHOTO_PASS_RATE),
        ("outlier", detector.outlier_scores, fitting.OUTLIER_PHOTO_PASS_RATE),
        ("digit", detector.digit_scores, fitting.DIGIT_PHOTO_PASS_RATE),
    ):
        assert (score(feats, stats).numpy() <= entry[rule]).mean() >= rate - 0.002, rule
    # the things (and digits) each head learnt from score higher than the garments, on the whole
    for score, pixels in ((detector.outlier_scores, things), (detector.digit_scores, digits)):
        learnt = score(detector.penultimate_features(model, torch.from_numpy(pixels)), stats).numpy()
        assert np.median(learnt) > np.median(score(feats, stats).numpy())
    assert 0.9 <= entry["pass_rate"] <= 1.0
