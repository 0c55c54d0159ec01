"""The prepared GPU command (scripts/gpu_train.sh, fmnist.gpu_plan), rehearsed on the CPU with --smoke: the same
steps as on a GPU machine, tiny; what it packs must fit the machine's limits and unpack into models that load."""

import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, needs_real_data
from fmnist import gpu_plan
from fmnist.models import DEFAULT_MODELS

SCRIPT = ["bash", str(ROOT / "scripts" / "gpu_train.sh")]
ENV = {**os.environ, "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1"}  # no Hub here: no ImageNet weights


@pytest.fixture(scope="module")
def photo_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "photo-data.npz"
    subprocess.run([sys.executable, "scripts/build_photo_data.py", "--train-items", "12", "--val-items", "4",
                    "--workers", "1", "--out", str(path)], check=True, capture_output=True, cwd=ROOT, timeout=300)
    return path


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, photo_cache):
    root = tmp_path_factory.mktemp("gpu")
    proc = subprocess.run([*SCRIPT, "--smoke", "--pack", str(root / "pack"), "--work", str(root / "work"),
                           "--photo-data", str(photo_cache)], capture_output=True, text=True, cwd=ROOT, timeout=600,
                          env=ENV)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root


@needs_real_data
def test_the_smoke_run_packs_at_most_8_files_of_at_most_16_mib(smoke):
    files = sorted((smoke / "pack").iterdir())
    assert 3 <= len(files) <= 8
    assert all(f.stat().st_size <= 16 * 2**20 for f in files)
    assert {"plan.json", "logs.tar.gz", "checkpoints.tar.gz.part00"} <= {f.name for f in files}


@needs_real_data
def test_every_job_ran_with_its_command_and_figures(smoke):
    plan = json.loads((smoke / "pack" / "plan.json").read_text())
    jobs = {j["name"]: j for j in plan["jobs"]}
    assert set(jobs) == {f"wide_resnet-seed{s}" for s in gpu_plan.BEST_SEEDS} | set(DEFAULT_MODELS)
    for job in jobs.values():
        assert job["state"] == "done", job
        assert job["command"].startswith("python train.py --models ")
        assert 0 <= job["result"]["test_acc"] <= 1 and "val_0.94_s" in job["result"]
    # the photo recipe goes to the models the app leans on, with the cache it was given
    assert "--photo-data" in jobs["resnet"]["command"] and "--photo-data" not in jobs["mlp"]["command"]
    assert "--no-pretrained" in jobs["mobilenet"]["command"]  # no ImageNet weights here: honestly labelled
    runs = plan["speedrun"]["runs"]
    assert len(runs) == 2 and all(r["seconds"] > 0 and 0 <= r["test_acc"] <= 1 for r in runs)
    assert plan["best_model"]["seeds"] == 3 and len(plan["best_model"]["test_accs"]) == 3
    assert plan["machine"]["torch"]


@needs_real_data
def test_the_pack_unpacks_into_models_that_load_and_predict(smoke, tmp_path):
    unpacked = gpu_plan.unpack(smoke / "pack", tmp_path / "gpu")
    answers = gpu_plan.check_models(unpacked)
    assert set(answers) == set(DEFAULT_MODELS) | {"wide_resnet"}
    config = json.loads((unpacked / "mobilenet" / "config.json").read_text())
    assert config["pretrained"] is False


@needs_real_data
def test_adopt_replaces_only_what_the_gpu_run_beat_on_validation(smoke, tmp_path):
    import shutil

    unpacked = gpu_plan.unpack(smoke / "pack", tmp_path / "gpu")
    bundled = tmp_path / "bundled"
    shutil.copytree(unpacked, bundled)
    metrics = json.loads((bundled / "mlp" / "metrics.json").read_text())
    metrics["val"]["accuracy"] = 1.0  # the bundled mlp is better on validation: it must stay
    (bundled / "mlp" / "metrics.json").write_text(json.dumps(metrics))
    taken = gpu_plan.adopt(unpacked, bundled)
    assert "mlp" not in taken
    assert json.loads((bundled / "mlp" / "metrics.json").read_text())["val"]["accuracy"] == 1.0
    assert (bundled / "results.json").is_file() and (bundled / "README.md").is_file()


@needs_real_data
def test_a_call_cut_off_at_its_budget_still_leaves_its_record(tmp_path):
    proc = subprocess.run([*SCRIPT, "--smoke", "--budget-s", "1", "--pack", str(tmp_path / "pack"), "--work",
                           str(tmp_path / "work"), "--photo-data", str(tmp_path / "none.npz")],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env=ENV)
    assert proc.returncode == 1  # not every job finished
    plan = json.loads((tmp_path / "pack" / "plan.json").read_text())
    assert {j["state"] for j in plan["jobs"]} == {"cut off"}
    assert plan["photo_data"] is None  # a missing cache is said, and training goes on without it


def test_time_to_validation_thresholds_counts_training_seconds():
    history = [{"seconds": 2.0, "val_acc": 0.89}, {"seconds": 2.0, "val_acc": 0.925}, {"seconds": 3.0, "val_acc": 0.93}]
    assert gpu_plan.crossings(history) == {"val_0.90_s": 4.0, "val_0.92_s": 4.0, "val_0.94_s": None}


def test_the_training_path_imports_without_what_a_gpu_machine_lacks():
    """The GPU machine's image has no pillow-heif, gradio, optuna or trackio, and no package index to get them."""
    code = ("import sys\nfor m in ('pillow_heif', 'gradio', 'optuna', 'trackio'): sys.modules[m] = None\n"
            "import train, fmnist.gpu_plan, fmnist.speedrun, fmnist.training, fmnist.detector\n"
            "print(train.build_parser().parse_args(['--preset', 'speedrun']).preset)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "speedrun", out.stderr
