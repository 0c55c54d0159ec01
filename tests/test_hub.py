"""Checkpoint folders, the model card, pushing (against a recording stand-in for the Hub API) and pulling."""

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, needs_real_data, real_data_dir
from fmnist.checkpoints import hub, store
from fmnist.checkpoints.hub import CheckpointError, PushError
from fmnist.models.registry import MODEL_NAMES, build_model

SECRET = "hf_TESTSECRETtoken0123456789"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_save_then_load_gives_equal_logits(tmp_path, name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    store.save_pretrained(tmp_path, model, name, {})
    loaded, config = store.load_folder(tmp_path)
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert config["architecture"] == name and not loaded.training


def test_float16_storage_halves_the_file_and_keeps_predictions(tmp_path):
    torch.manual_seed(0)
    model = build_model("deep_cnn").eval()
    store.save_pretrained(tmp_path / "a", model, "deep_cnn", {})
    store.save_pretrained(tmp_path / "b", model, "deep_cnn", {}, dtype=torch.float16)
    size = lambda f: (tmp_path / f / store.WEIGHTS_NAME).stat().st_size  # noqa: E731
    assert size("b") < 0.55 * size("a")
    loaded, config = store.load_folder(tmp_path / "b")
    x = torch.rand(16, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x).argmax(1), loaded(x).argmax(1))
    assert config["weights_dtype"] == "float16"


def _saved(tmp_path, name="mlp"):
    store.save_pretrained(tmp_path, build_model(name), name, {})
    return tmp_path


def _edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | changes))
    return folder


def test_refuses_an_unknown_architecture(tmp_path):
    folder = _edit_config(_saved(tmp_path), architecture="vgg16")
    with pytest.raises(CheckpointError, match="architecture 'vgg16', which fmnist does not know"):
        store.load_folder(folder)


def test_refuses_weights_that_do_not_fit(tmp_path):
    folder = _edit_config(_saved(tmp_path, "mlp"), architecture="basic_cnn")
    with pytest.raises(CheckpointError, match="does not fit the basic_cnn architecture"):
        store.load_folder(folder)


def test_refuses_model_args_that_do_not_fit(tmp_path):
    folder = _edit_config(_saved(tmp_path, "mlp"), model_args={"depth": 50})
    with pytest.raises(CheckpointError, match="model_args do not fit mlp"):
        store.load_folder(folder)


def test_refuses_a_pickle_only_folder(tmp_path):
    folder = _saved(tmp_path, "mlp")
    torch.save(build_model("mlp").state_dict(), folder / "pytorch_model.bin")
    (folder / store.WEIGHTS_NAME).unlink()
    with pytest.raises(CheckpointError, match=r"only pickled weights \(pytorch_model.bin\)"):
        store.load_folder(folder)


def test_refuses_a_corrupt_weights_file(tmp_path):
    folder = _saved(tmp_path, "mlp")
    (folder / store.WEIGHTS_NAME).write_bytes(b"\x00" * 50)
    with pytest.raises(CheckpointError, match="cannot be read"):
        store.load_folder(folder)


# --- a real checkpoints folder, written by train.py -------------------------------------------------


@pytest.fixture(scope="module")
def trained_root(tmp_path_factory):
    if real_data_dir() is None:
        pytest.skip("Debian's dataset-fashion-mnist is not installed")
    root = tmp_path_factory.mktemp("checkpoints")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "train.py"),
            "--models",
            "mlp,basic_cnn",
            "--limit",
            "600",
            "--epochs",
            "1",
            "--out",
            str(root),
            "--data-dir",
            str(real_data_dir()),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (root / "mlp" / "train_state.pt").write_bytes(b"state of an unfinished run: never uploaded")
    return root


def _fingerprint(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@needs_real_data
def test_model_card_renders_with_model_index(trained_root):
    from huggingface_hub import ModelCard

    card = ModelCard.load(trained_root / "README.md")  # parses the YAML and the model-index back
    assert card.data.pipeline_tag == "image-classification" and card.data.license == "mit"
    assert card.data.library_name and card.data.datasets and card.data.tags and card.data.metrics
    got = {r.metric_name: r.metric_value for r in card.data.eval_results}
    for name in ("mlp", "basic_cnn"):
        acc = json.loads((trained_root / name / "metrics.json").read_text())["test"]["accuracy"]
        assert got[f"{name} test accuracy"] == pytest.approx(acc, abs=1e-4)
    image = re.search(r"!\[confusion matrix\]\(([^)]+)\)", card.text).group(1)
    assert (trained_root / image).is_file()
    assert "random initialisation" in card.text and "python train.py --models mlp" in card.text
    assert "| Shirt |" in card.text


@needs_real_data
def test_card_usage_snippet_runs(trained_root):
    card = (trained_root / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", card, re.S).group(1)
    assert len(code.strip().splitlines()) == 3
    code = code.replace('"USER/fmnist"', repr(str(trained_root)))
    scope = {"images": torch.rand(2, 1, 28, 28)}
    exec(code, scope)
    assert scope["probs"].shape == (2, 10) and torch.allclose(scope["probs"].sum(1), torch.ones(2))


class RecordingHubApi:
    """Stands in for huggingface_hub.HfApi, which cannot be reached from here: it records each call."""

    def __init__(self, fail_on=None):
        self.calls, self.fail_on = [], fail_on

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        if self.fail_on == "create_repo":
            raise OSError(f"connection refused (Authorization: Bearer {SECRET})")
        return f"https://huggingface.co/{repo_id}"

    def create_commit(self, repo_id, operations, **kwargs):
        operations = list(operations)
        self.calls.append(("create_commit", repo_id, [op.path_in_repo for op in operations], kwargs))
        if self.fail_on == "create_commit":
            raise RuntimeError(f"403 Forbidden for token {SECRET}")
        for op in operations:  # read what would be sent, as the real client does
            assert os.path.getsize(op.path_or_fileobj) > 0


@needs_real_data
def test_push_creates_the_repo_once_and_sends_one_commit_of_the_expected_files(
    trained_root, monkeypatch, caplog, capsys
):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    api = RecordingHubApi()
    before = _fingerprint(trained_root)
    with caplog.at_level(logging.DEBUG):
        url = hub.push_to_hub(trained_root, "alice/fmnist", api=api)
    assert url == "https://huggingface.co/alice/fmnist"
    assert [c[0] for c in api.calls] == ["create_repo", "create_commit"]
    files = set(api.calls[1][2])
    per_model = {
        "model.safetensors",
        "detector.safetensors",
        "config.json",
        "metrics.json",
        "confusion_matrix.png",
        "curves.png",
        "misclassified.png",
        "inference_grid.png",
        "gallery_features.safetensors",
    }
    expected = {"README.md", "results.json", "gallery.safetensors"} | {
        f"{m}/{f}" for m in ("mlp", "basic_cnn") for f in per_model
    }
    assert files == expected  # no train_state.pt, nothing temporary; the similar-items gallery and features
    assert _fingerprint(trained_root) == before
    out = capsys.readouterr()
    assert SECRET not in caplog.text + out.out + out.err


@needs_real_data
@pytest.mark.parametrize("fail_on", ["create_repo", "create_commit"])
def test_a_failed_push_leaves_everything_local_and_hides_the_token(trained_root, monkeypatch, caplog, fail_on):
    monkeypatch.setenv("HF_TOKEN", SECRET)
    before = _fingerprint(trained_root)
    with caplog.at_level(logging.DEBUG), pytest.raises(PushError) as e:
        hub.push_to_hub(trained_root, "alice/fmnist", api=RecordingHubApi(fail_on=fail_on))
    assert SECRET not in str(e.value) and SECRET not in caplog.text
    assert "retry" in str(e.value) and "python -m fmnist.checkpoints push" in str(e.value)
    assert _fingerprint(trained_root) == before


@needs_real_data
def test_push_without_a_token_says_how_to_get_one(trained_root, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # no stored login either
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.setattr(c, "HF_STORED_TOKENS_PATH", str(tmp_path / "stored_tokens"))
    with pytest.raises(PushError, match="HF_TOKEN.*hf auth login"):
        hub.push_to_hub(trained_root, "alice/fmnist")


def test_push_without_a_repo_id_is_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("FMNIST_HUB_REPO", raising=False)
    with pytest.raises(PushError, match="--repo-id"):
        hub.push_to_hub(tmp_path, api=RecordingHubApi())


@needs_real_data
def test_push_only_cli_without_token_fails_cleanly(trained_root, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"} | {"HF_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    before = _fingerprint(trained_root)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "fmnist.checkpoints",
            "push",
            "--repo-id",
            "alice/fmnist",
            "--out",
            str(trained_root),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 3 and "HF_TOKEN" in out.stderr
    assert _fingerprint(trained_root) == before


@needs_real_data
def test_pull_from_a_local_folder(trained_root):
    model, config = hub.load_pretrained(trained_root, "basic_cnn")
    assert config["architecture"] == "basic_cnn"


@needs_real_data
def test_pull_from_a_prepopulated_hub_cache_offline(trained_root, tmp_path):
    """The layout huggingface_hub writes (models--OWNER--NAME/refs, snapshots), read with HF_HUB_OFFLINE=1."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--alice--fmnist"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    shutil.copytree(trained_root / "mlp", repo / "snapshots" / commit / "mlp")
    script = (
        "import torch\n"
        "from fmnist.checkpoints.hub import load_pretrained\n"
        "m, c = load_pretrained('alice/fmnist', 'mlp')\n"
        "print(c['architecture'], m(torch.rand(1, 1, 28, 28)).shape[-1])"
    )
    env = os.environ | {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "hub")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["mlp", "10"]
    # and a repo that is not in the cache fails with a clear error, not a hang
    script2 = script.replace("alice/fmnist", "bob/other")
    out = subprocess.run([sys.executable, "-c", script2], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode != 0 and "cannot get mlp from the Hub repo bob/other" in out.stderr


def test_the_card_command_keeps_flags_whose_value_is_zero():
    import dataclasses

    from fmnist.training.config import TrainConfig, command_for

    cfg = dataclasses.asdict(TrainConfig(shift_px=0, hflip=False, epochs=8, no_pretrained=True))
    cmd = command_for(cfg, "basic_cnn")
    assert cmd == "python train.py --models basic_cnn --epochs 8 --shift-px 0 --no-hflip --no-pretrained"


@needs_real_data
def test_the_card_links_a_tracked_project_synced_to_a_space(trained_root, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(trained_root, root)
    _edit_config(root / "mlp", tracking={"project": "fmnist", "run": "mlp-20261125-0700", "space": "alice/board"})
    _edit_config(root / "basic_cnn", tracking={"project": "fmnist", "run": "basic_cnn-1", "space": None})
    text = hub.model_card(root).text
    assert "[alice/board](https://huggingface.co/spaces/alice/board)" in text and "mlp-20261125-0700" in text
    assert "basic_cnn-1" not in text  # tracked locally only: nothing to link
