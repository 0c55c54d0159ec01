"""The prepared GPU command (scripts/gpu_train.sh, fmnist.gpu.plan), rehearsed on the CPU with --smoke: the same
steps as on a GPU machine, tiny; what it packs must fit the machine's limits and unpack into models that load."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, needs_real_data, real_data_dir
from fmnist.data import FILES
from fmnist.gpu import local as gpu_call
from fmnist.gpu import pack as gpu_pack
from fmnist.gpu import plan as gpu_plan
from fmnist.models.registry import DEFAULT_MODELS

SCRIPT = ["bash", str(ROOT / "scripts" / "gpu_train.sh")]
ENV = {**os.environ, "PYTHON": sys.executable, "HF_HUB_OFFLINE": "1"}  # no Hub here: no ImageNet weights


@pytest.fixture(scope="module")
def photo_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "photo-data.npz"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "fmnist.photo.build",
            "--train-items",
            "12",
            "--val-items",
            "4",
            "--workers",
            "1",
            "--out",
            str(path),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
        timeout=300,
    )
    return path


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, photo_cache):
    root = tmp_path_factory.mktemp("gpu")
    proc = subprocess.run(
        [
            *SCRIPT,
            "--smoke",
            "--pack",
            str(root / "pack"),
            "--work",
            str(root / "work"),
            "--photo-data",
            str(photo_cache),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        env=ENV,
    )
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
    assert set(jobs) == {"wide_resnet-seed0"} | set(DEFAULT_MODELS)  # the smoke run tries one seed of three
    for job in jobs.values():
        assert job["state"] == "done", job
        assert job["command"].startswith("python train.py --models ")
        assert 0 <= job["result"]["test_acc"] <= 1 and "val_0.94_s" in job["result"]
    # the photo recipe goes to the models the app leans on, with the cache it was given
    assert "--photo-data" in jobs["resnet"]["command"] and "--photo-data" not in jobs["mlp"]["command"]
    assert "--no-pretrained" in jobs["mobilenet"]["command"]  # no ImageNet weights here: honestly labelled
    runs = plan["speedrun"]["runs"]
    assert len(runs) == 2 and all(r["seconds"] > 0 and 0 <= r["test_acc"] <= 1 for r in runs)
    assert plan["best_model"]["seeds"] == 1 and len(plan["best_model"]["test_accs"]) == 1
    assert plan["machine"]["torch"]


def test_the_real_plan_trains_the_best_model_for_three_seeds_and_summarises_them(tmp_path):
    jobs = gpu_plan.plan_jobs(tmp_path, None, smoke=False)
    assert [j.name for j in jobs if j.argv[1] == "wide_resnet"] == [f"wide_resnet-seed{s}" for s in (0, 1, 2)]
    # the photo recipe for the models the app leans on (the bundled resnet's), not for the others
    recipe = {j.name: " ".join(j.argv) for j in gpu_plan.plan_jobs(tmp_path, Path("p.npz"), smoke=False)}
    assert "--photo-share 0.25 --print-p 0.25" in recipe["resnet"] and "--print-p" not in recipe["mlp"]
    plan = type("P", (), {"jobs": jobs})()
    for job, acc in zip([j for j in jobs if j.argv[1] == "wide_resnet"], (0.95, 0.96, 0.97)):
        job.state, job.result = "done", {"test_acc": acc, "val_acc": acc}
    summary = gpu_pack.summarise_seeds(plan)
    assert summary["seeds"] == 3 and abs(summary["test_acc_mean"] - 0.96) < 1e-9
    assert abs(summary["test_acc_std"] - 0.01) < 1e-9


@needs_real_data
def test_the_pack_unpacks_into_models_that_load_and_predict(smoke, tmp_path):
    unpacked = gpu_call.unpack(smoke / "pack", tmp_path / "gpu")
    answers = gpu_call.check_models(unpacked)
    assert set(answers) == set(DEFAULT_MODELS) | {"wide_resnet"}
    config = json.loads((unpacked / "mobilenet" / "config.json").read_text())
    assert config["pretrained"] is False


@needs_real_data
def test_adopt_replaces_only_what_the_gpu_run_beat_on_validation(smoke, tmp_path):
    import shutil

    unpacked = gpu_call.unpack(smoke / "pack", tmp_path / "gpu")
    bundled = tmp_path / "bundled"
    shutil.copytree(unpacked, bundled)
    metrics = json.loads((bundled / "mlp" / "metrics.json").read_text())
    metrics["val"]["accuracy"] = 1.0  # the bundled mlp is better on validation: it must stay
    (bundled / "mlp" / "metrics.json").write_text(json.dumps(metrics))
    taken = gpu_call.adopt(unpacked, bundled)
    assert "mlp" not in taken
    assert json.loads((bundled / "mlp" / "metrics.json").read_text())["val"]["accuracy"] == 1.0
    assert (bundled / "results.json").is_file() and (bundled / "README.md").is_file()


@needs_real_data
def test_a_call_cut_off_at_its_budget_still_leaves_its_record(tmp_path):
    proc = subprocess.run(
        [
            *SCRIPT,
            "--smoke",
            "--budget-s",
            "1",
            "--pack",
            str(tmp_path / "pack"),
            "--work",
            str(tmp_path / "work"),
            "--photo-data",
            str(tmp_path / "none.npz"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        env=ENV,
    )
    assert proc.returncode == 1  # not every job finished
    plan = json.loads((tmp_path / "pack" / "plan.json").read_text())
    assert {j["state"] for j in plan["jobs"]} == {"cut off"}
    assert plan["photo_data"] is None  # a missing cache is said, and training goes on without it


def test_time_to_validation_thresholds_counts_training_seconds():
    history = [{"seconds": 2.0, "val_acc": 0.89}, {"seconds": 2.0, "val_acc": 0.925}, {"seconds": 3.0, "val_acc": 0.93}]
    assert gpu_plan.crossings(history) == {"val_0.90_s": 4.0, "val_0.92_s": 4.0, "val_0.94_s": None}


def test_the_training_path_imports_without_what_a_gpu_machine_lacks():
    """The GPU machine's image has no pillow-heif, gradio, optuna or trackio, and no package index to get them."""
    code = (
        "import sys\nfor m in ('pillow_heif', 'gradio', 'optuna', 'trackio'): sys.modules[m] = None\n"
        "import train, fmnist.gpu.plan, fmnist.training.speedrun, fmnist.training.loop, fmnist.notice.fitting\n"
        "print(train.build_parser().parse_args(['--models', 'resnet']).models)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "['resnet']", out.stderr


# ---- the call's first contact: the data travels and is found, the call fits, failures are loud ----


def test_without_the_data_set_the_call_stops_at_once_saying_what_to_carry(tmp_path):
    empty = tmp_path / "no-data"
    empty.mkdir()
    started = time.monotonic()
    proc = subprocess.run(
        [
            *SCRIPT,
            "--smoke",
            "--pack",
            str(tmp_path / "pack"),
            "--work",
            str(tmp_path / "work"),
            "--data-dir",
            str(empty),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env=ENV,
    )
    assert proc.returncode == 2 and time.monotonic() - started < 30
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "python -m fmnist.gpu data" in lines[0] and ".gpu" in lines[0]
    assert not (tmp_path / "work").exists()  # nothing ran


def test_files_that_are_not_the_real_data_set_are_refused(tiny_dataset):
    with pytest.raises(gpu_call.NoData, match="not the real file"):
        gpu_call.find_data(str(tiny_dataset))


@needs_real_data
def test_the_real_files_are_found_and_pass_their_digests():
    assert gpu_call.find_data(str(real_data_dir())) == real_data_dir()


@needs_real_data
def test_a_failed_job_or_speedrun_fails_the_command_and_says_why(tmp_path, monkeypatch):
    def failing(self, argv, log_name, program=()):  # every training process dies at start-up, as a broken import would
        logf = open(self.work / "logs" / f"{log_name}.log", "w")
        return subprocess.Popen(
            [sys.executable, "-c", "print('boom: no module named x'); raise SystemExit(3)"],
            stdout=logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    monkeypatch.setattr(gpu_plan.Plan, "_popen", failing)
    code = gpu_plan.main(
        [
            "--smoke",
            "--pack",
            str(tmp_path / "pack"),
            "--work",
            str(tmp_path / "work"),
            "--photo-data",
            str(tmp_path / "none.npz"),
            "--data-dir",
            str(real_data_dir()),
        ]
    )
    assert code == 1
    plan = json.loads((tmp_path / "pack" / "plan.json").read_text())
    failures = {f["part"]: f for f in plan["failures"]}
    assert set(failures) == {"speedrun"} | {j["name"] for j in plan["jobs"]}
    assert all(f["why"] == "exit 3" and f["log_tail"] == ["boom: no module named x"] for f in failures.values())
    assert plan["speedrun_state"] == "failed" and "--data-dir" in plan["speedrun_command"]


def _repo(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("/.gpu/\n/ignored/\n")
    (tmp_path / "tracked.bin").write_bytes(b"t" * 3000)
    subprocess.run(["git", "-C", str(tmp_path), "add", "."], check=True)
    (tmp_path / "new.txt").write_bytes(b"n" * 200)
    (tmp_path / "ignored").mkdir()
    (tmp_path / "ignored" / "venv.bin").write_bytes(b"v" * 9000)
    (tmp_path / ".gpu" / "data").mkdir(parents=True)
    (tmp_path / ".gpu" / "data" / "x.xz").write_bytes(b"x" * 5000)
    return tmp_path


def test_the_size_counts_tracked_untracked_and_carried_files_but_not_ignored_ones(tmp_path):
    parts = gpu_call.sent_files((".gpu",), _repo(tmp_path))
    assert parts == {"tracked": 3000 + len("/.gpu/\n/ignored/\n"), "untracked, not ignored": 200, "carry .gpu": 5000}


def test_the_size_command_refuses_a_call_over_the_limit(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_call, "ROOT", _repo(tmp_path))
    assert gpu_call.main(["size", "--limit-mib", str(8000 / 2**20)]) == 1 and "over the" in capsys.readouterr().err
    assert gpu_call.main(["size", "--limit-mib", str(9000 / 2**20)]) == 0


def test_the_carried_data_is_checked_after_it_is_written(tiny_dataset, tmp_path):
    with pytest.raises(RuntimeError, match="not the real file"):
        gpu_call.write_data(tmp_path / "carry", tiny_dataset)
    assert sorted(p.name for p in (tmp_path / "carry").iterdir()) == sorted(
        n.removesuffix(".gz") + ".xz" for n, _ in FILES.values()
    )


def test_the_documented_call_is_the_one_the_code_makes():
    doc = (ROOT / "docs" / "gpu.md").read_text()
    assert json.dumps(gpu_call.CALL, indent=1) in doc  # as `python -m fmnist.gpu show` prints it
