"""python -m fmnist.training.search: Optuna through the real trainer, on the real data, with a real SQLite study."""

import json
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy.exc

from conftest import ROOT, needs_real_data, real_data_dir

pytestmark = needs_real_data
SMALL = ["--limit", "300", "--epochs", "2", "--batch-size", "64"]


def search_cmd(folder, *args):
    return [
        sys.executable,
        "-m",
        "fmnist.training.search",
        "basic_cnn",
        "--data-dir",
        str(real_data_dir()),
        "--search-dir",
        str(folder),
        *SMALL,
        *args,
    ]


def trial_states(folder) -> list[str]:
    import optuna

    try:
        study = optuna.load_study(
            study_name="fmnist-basic_cnn", storage=f"sqlite:///{folder / 'basic_cnn' / 'study.db'}"
        )
    except KeyError:  # the database exists a moment before the study's record does
        return []
    except sqlalchemy.exc.SQLAlchemyError:  # polling while the search is still creating the tables
        return []
    return [t.state.name for t in study.trials]


def claimed_running(folder) -> bool:
    """Whether a running trial has its worker's pid recorded (so the kill below interrupts one mid-training)."""
    import optuna

    try:
        study = optuna.load_study(
            study_name="fmnist-basic_cnn", storage=f"sqlite:///{folder / 'basic_cnn' / 'study.db'}"
        )
        return any(t.state.name == "RUNNING" and "pid" in t.user_attrs for t in study.trials)
    except (KeyError, sqlalchemy.exc.SQLAlchemyError):
        return False


def finished(states) -> int:
    return sum(s in ("COMPLETE", "PRUNED") for s in states)


def test_a_three_trial_search_writes_best_json_and_plots(tmp_path):
    out = subprocess.run(search_cmd(tmp_path, "--trials", "3"), capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    folder = tmp_path / "basic_cnn"
    best = json.loads((folder / "best.json").read_text())
    assert best["model"] == "basic_cnn" and best["finished_trials"] == 3 == finished(trial_states(tmp_path))
    assert set(best["train_config"]) >= {"lr", "weight_decay", "label_smoothing", "batch_size", "rotate_deg", "zoom"}
    assert set(best["model_args"]) == {"channels", "hidden", "dropout"}
    assert best["defaults_val_loss"] is not None  # trial 0 ran the defaults, for comparison
    assert "best trial #" in out.stdout and "python train.py --models basic_cnn --params" in out.stdout
    for plot in ("optimization_history.png", "param_importances.png"):
        assert (folder / plot).stat().st_size > 5000
    assert not any((folder / "runs").glob("*/model.safetensors"))  # trials keep numbers, not weights


def test_a_killed_search_resumes_from_its_sqlite_study(tmp_path):
    args = ["--trials", "4"]
    proc = subprocess.Popen(search_cmd(tmp_path, *args), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "basic_cnn" / "study.db"
    deadline = time.time() + 300
    while proc.poll() is None and time.time() < deadline:
        if db.exists() and finished(trial_states(tmp_path)) >= 1 and claimed_running(tmp_path):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the search finished before it could be interrupted"
    before = trial_states(tmp_path)
    assert 1 <= finished(before) < 4
    # the trial the kill interrupted is left running (unless it had just finished when the signal came)
    orphans = [i for i, state in enumerate(before) if state == "RUNNING"]

    out = subprocess.run(search_cmd(tmp_path, *args), capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    after = trial_states(tmp_path)
    assert all(after[i] == "FAIL" for i in orphans)  # marked failed on resume, not waited for
    assert finished(after) == 4 and "RUNNING" not in after  # the study holds exactly the agreed number


def test_a_trial_no_worker_ever_claimed_is_failed_once_it_is_old(monkeypatch):
    """A search killed between asking for a trial and recording its host and pid leaves a running trial without
    them: a resumed search fails it once it is older than UNCLAIMED_S, and leaves a fresh one to its worker."""
    import optuna

    from fmnist.training import search

    study = optuna.create_study()
    unclaimed = study.ask()
    search._fail_orphans(study, optuna)
    assert study.trials[unclaimed.number].state == optuna.trial.TrialState.RUNNING  # a worker may be about to claim it
    elsewhere = study.ask()
    elsewhere.set_user_attr("host", "another-machine")  # its worker has not written its pid yet
    monkeypatch.setattr(search, "UNCLAIMED_S", -1.0)
    search._fail_orphans(study, optuna)
    assert study.trials[unclaimed.number].state == optuna.trial.TrialState.FAIL
    assert study.trials[elsewhere.number].state == optuna.trial.TrialState.RUNNING  # left to its own host


def test_two_workers_on_one_storage_finish_the_agreed_number_together(tmp_path):
    (tmp_path / "basic_cnn").mkdir()
    storage = f"sqlite:///{tmp_path / 'basic_cnn' / 'study.db'}"
    procs = [
        subprocess.Popen(
            search_cmd(tmp_path, "--trials", "5", "--storage", storage),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    import optuna

    trials = optuna.load_study(study_name="fmnist-basic_cnn", storage=storage).trials
    assert finished([t.state.name for t in trials]) == 5
    ran = [t for t in trials if not t.user_attrs.get("surplus")]  # a surplus trial was asked, then told FAIL unrun
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in ran)
    assert len({t.user_attrs["pid"] for t in ran}) == 2  # both workers ran trials


TAKE_QUEUED = """
import os, sys, optuna
from fmnist.training.search import open_storage
study = optuna.load_study(study_name="queue", storage=open_storage(optuna, sys.argv[1]))
while (trial_id := study._pop_waiting_trial_id()) is not None:
    study._storage.set_trial_user_attr(trial_id, f"taken by {os.getpid()}", True)
"""


def test_two_workers_never_take_the_same_queued_trial(tmp_path):
    """The race behind a trial run twice: both workers read the queued trial as waiting before either marks it
    running. Without the write lock at BEGIN a few of 150 queued trials are taken by both."""
    import optuna

    url = f"sqlite:///{tmp_path / 'queue.db'}"
    study = optuna.create_study(study_name="queue", storage=url)
    for x in range(150):
        study.enqueue_trial({"x": x})
    procs = [subprocess.Popen([sys.executable, "-c", TAKE_QUEUED, url], cwd=ROOT) for _ in range(2)]
    assert all(p.wait(timeout=300) == 0 for p in procs)
    takers = [len(t.user_attrs) for t in optuna.load_study(study_name="queue", storage=url).trials]
    assert takers == [1] * 150


def test_a_trial_asked_past_the_agreed_number_is_surplus_whoever_asks_first():
    """The race the two workers above can run into: both see four of five trials and both ask. The one with the
    higher number is surplus and the earlier one is not, whichever of them looks first."""
    import optuna

    from fmnist.training.search import _surplus

    study = optuna.create_study()
    first = [study.ask() for _ in range(4)]
    study.tell(first[0], 1.0)
    study.tell(first[1], state=optuna.trial.TrialState.PRUNED)
    study.tell(first[2], state=optuna.trial.TrialState.FAIL)  # a failed trial is not one of the five
    a, b, c = study.ask(), study.ask(), study.ask()
    assert _surplus(study, c, 5, optuna)  # 0, 1, 3, a and b come before it
    assert not _surplus(study, b, 5, optuna) and not _surplus(study, a, 5, optuna)


def test_best_json_round_trips_into_train_params(tmp_path):
    best = {
        "model": "basic_cnn",
        "train_config": {
            "lr": 0.004,
            "weight_decay": 1e-4,
            "label_smoothing": 0.05,
            "batch_size": 128,
            "shift_px": 1,
            "hflip": True,
            "rotate_deg": 5.0,
            "zoom": 0.05,
            "erase_p": 0.1,
        },
        "model_args": {"channels": 16, "hidden": 64, "dropout": 0.1},
    }
    params = tmp_path / "best.json"
    params.write_text(json.dumps(best))
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--data-dir",
            str(real_data_dir()),
            "--models",
            "basic_cnn",
            "--params",
            str(params),
            "--limit",
            "300",
            "--epochs",
            "1",
            "--lr",
            "0.001",
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    config = json.loads((tmp_path / "out" / "basic_cnn" / "config.json").read_text())
    tc = config["train_config"]
    assert tc["lr"] == 0.001  # a flag given explicitly wins over the file
    assert {k: tc[k] for k in best["train_config"] if k != "lr"} == {
        k: v for k, v in best["train_config"].items() if k != "lr"
    }
    assert config["model_args"] == best["model_args"]
    # the recorded command reproduces the run without the file: its fields without a flag inline
    import shlex

    import train

    again, _ = train.parse_args(shlex.split(config["command"])[2:])
    assert {k: getattr(again, k) for k in best["train_config"]} == {k: tc[k] for k in best["train_config"]}
    assert again.model_args == {"basic_cnn": best["model_args"]}


def test_a_missing_params_file_is_a_clear_error(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "--models", "mlp", "--params", str(tmp_path / "nope.json")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 2 and "--params" in out.stderr and "No such file" in out.stderr


@pytest.mark.parametrize("model", ["mlp", "basic_cnn", "deep_cnn", "resnet", "mobilenet"])
def test_every_model_declares_a_search_space_that_builds(model):
    import optuna

    from fmnist.models.registry import build_model
    from fmnist.training.config import TrainConfig
    from fmnist.training.search import _defaults, suggest

    train_settings, model_args = suggest(optuna.trial.FixedTrial(_defaults(TrainConfig(), model)), model)
    assert build_model(model, **model_args) is not None
    assert 0 < train_settings["lr"] < 1
