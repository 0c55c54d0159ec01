"""Experiment tracking with trackio (train.py --track), as a user runs it: train.py in a subprocess on the real
IDX files, trackio's SQLite in a temporary TRACKIO_DIR, and every network connection off this machine
refused and recorded (a sitecustomize that guards the socket module)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, kill_once_saved, needs_real_data, real_data_dir

pytestmark = [
    needs_real_data,
    pytest.mark.skipif(not __import__("importlib").util.find_spec("trackio"), reason="trackio is not installed"),
]
QUICK = ["--models", "mlp", "--limit", "1000", "--batch-size", "128"]

GUARD = """
import os, socket
_log = os.environ["FMNIST_NET_LOG"]
def _local(host):
    return str(host).startswith(("127.", "::1", "localhost", "/")) or host in ("", "0.0.0.0")
def _record(what):
    with open(_log, "a") as f:
        f.write(repr(what) + "\\n")
    raise OSError("network blocked by the fmnist tracking test: " + repr(what))
_connect = socket.socket.connect
def connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
        _record(address)
    return _connect(self, address)
socket.socket.connect = connect
_getaddrinfo = socket.getaddrinfo
def getaddrinfo(host, *a, **k):
    if host is not None and not _local(host):
        _record(host)
    return _getaddrinfo(host, *a, **k)
socket.getaddrinfo = getaddrinfo
"""


@pytest.fixture
def env(tmp_path):
    guard = tmp_path / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("TRACKIO", "HF_HUB_OFFLINE"))},
        "TRACKIO_DIR": str(tmp_path / "trackio"),
        "FMNIST_NET_LOG": str(tmp_path / "net.log"),
        "PYTHONPATH": os.pathsep.join([str(guard), str(ROOT)]),
    }


def train(env, *args, check=True, popen=False, program=("train.py",)):
    cmd = [sys.executable, *program, "--data-dir", str(real_data_dir()), *args]
    if popen:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def tracked(env, project) -> dict:
    """{run name: {"config": ..., "logs": [...]}} read back through trackio's own storage API."""
    code = (
        "import json, sys; from trackio.sqlite_storage import SQLiteStorage as S; p = sys.argv[1]; "
        "print(json.dumps({r: {'config': S.get_run_config(p, r), 'logs': S.get_logs(p, r)} "
        "for r in S.get_runs(p)}, default=str))"
    )
    out = subprocess.run([sys.executable, "-c", code, project], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


def epoch_rows(logs):
    return sorted((r for r in logs if "val_loss" in r), key=lambda r: r["step"])


def test_a_tracked_run_logs_what_metrics_json_records_epoch_for_epoch(env, tmp_path):
    train(env, *QUICK, "--epochs", "2", "--out", str(tmp_path / "out"), "--track", "tiny")
    report = json.loads((tmp_path / "out" / "mlp" / "metrics.json").read_text())
    runs = tracked(env, "tiny")
    assert len(runs) == 1
    [(name, run)] = runs.items()
    assert name.startswith("mlp-") and run["config"]["model"] == "mlp" and run["config"]["limit"] == 1000
    rows = epoch_rows(run["logs"])
    assert [r["step"] for r in rows] == [h["epoch"] for h in report["history"]] == [1, 2]
    for r, h in zip(rows, report["history"]):
        for key in ("train_loss", "train_acc", "val_loss", "val_acc"):
            assert r[key] == pytest.approx(h[key], rel=1e-9), key
        assert r["lr"] == pytest.approx(h["lr_end"]) and r["epoch_seconds"] == pytest.approx(h["seconds"])
        assert r["images_per_s"] == pytest.approx(report["split"]["train"] / h["seconds"])
    final = next(r for r in run["logs"] if "test/accuracy" in r)
    assert final["test/accuracy"] == pytest.approx(report["test"]["accuracy"])
    assert final["calibration/temperature"] == pytest.approx(report["temperature"])
    assert "confusion_matrix" in final
    assert not (tmp_path / "net.log").exists(), (tmp_path / "net.log").read_text()  # nothing left the machine


def test_a_killed_then_resumed_tracked_run_has_each_epoch_once(env, tmp_path):
    args = [
        *QUICK,
        "--epochs",
        "3",
        "--params",
        '{"patience": 10}',
        "--out",
        str(tmp_path / "out"),
        "--track",
        "cut",
    ]
    state = tmp_path / "out" / ".partial" / "mlp" / "train_state.pt"
    proc = train(env, *args, popen=True)
    kill_once_saved(proc, state)
    assert torch.load(state, weights_only=True)["run"]["epoch"] < 3
    train(env, *args, "--resume")
    runs = tracked(env, "cut")
    assert len(runs) == 1  # the same run, continued
    steps = [r["step"] for r in epoch_rows(next(iter(runs.values()))["logs"])]
    assert steps == [1, 2, 3]


def test_a_tracked_search_has_one_run_per_trial_with_its_parameters(env, tmp_path):
    train(
        env,
        "basic_cnn",
        "--trials",
        "2",
        "--limit",
        "600",
        "--epochs",
        "1",
        "--search-dir",
        str(tmp_path / "search"),
        "--track",
        "study",
        program=("-m", "fmnist.training.search"),
    )
    runs = tracked(env, "study")
    assert sorted(runs) == ["fmnist-basic_cnn-trial-0", "fmnist-basic_cnn-trial-1"]
    best = json.loads((tmp_path / "search" / "basic_cnn" / "best.json").read_text())
    for run in runs.values():
        assert run["config"]["study"] == "fmnist-basic_cnn" and "lr" in run["config"]
        assert any(r.get("pruned") == 0 for r in run["logs"]) and epoch_rows(run["logs"])
    assert any(run["config"]["lr"] == pytest.approx(best["train_config"]["lr"]) for run in runs.values())


def test_track_space_needs_track(tmp_path, env):
    proc = train(env, *QUICK, "--track-space", "alice/board", "--out", str(tmp_path), check=False)
    assert proc.returncode != 0 and "--track" in proc.stderr
