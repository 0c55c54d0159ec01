"""Deploying the app as a Space (python -m fmnist.space): what is uploaded, where, and with which settings, against
a recording stand-in for huggingface_hub.HfApi (the Hub cannot be reached from here)."""

import os
import posixpath
import re
from pathlib import Path

import pytest
from huggingface_hub import metadata_load

from conftest import ROOT
from fmnist import space

SECRET = "hf_secretTOKEN1234567890"


class RecordingSpaceApi:
    """Records each call; upload_folder keeps the folder's files and README as they would be sent."""

    def __init__(self, fail_on=None):
        self.calls, self.files, self.readme, self.fail_on = [], [], None, fail_on

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        if self.fail_on == "create_repo":
            raise OSError(f"connection refused (Authorization: Bearer {SECRET})")

    def add_space_variable(self, repo_id, key, value, **kwargs):
        self.calls.append(("add_space_variable", repo_id, key, value))

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        self.calls.append(("upload_folder", repo_id, kwargs))
        root = Path(folder_path)
        self.files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        self.readme = root / "README.md"
        self.readme_text = self.readme.read_text()  # the staging folder is gone once deploy returns
        self.front = metadata_load(self.readme)  # huggingface_hub's own parser of the front matter


def test_the_space_gets_the_app_and_the_bundled_checkpoints_and_nothing_else():
    api = RecordingSpaceApi()
    url = space.deploy("alice/fmnist", api=api)
    assert url == "https://huggingface.co/spaces/alice/fmnist"
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"]  # no variable without --weights
    assert api.calls[0][2]["repo_type"] == "space" and api.calls[0][2]["space_sdk"] == "gradio"
    assert api.calls[1][2]["repo_type"] == "space"
    files = set(api.files)
    assert {
        "app.py",
        "requirements.txt",
        "README.md",
        "fmnist/__init__.py",
        "fmnist/photo/pipeline.py",
        "checkpoints/resnet/model.safetensors",
        "checkpoints/gallery.safetensors",
    } <= files
    assert set(space.space_files()) | {"README.md"} == files  # exactly the allowlist
    for banned in (".venv/", "runs/", "tests/", "data/", "benchmarks/", ".git/", ".gpu/", "__pycache__"):
        assert not any(banned in f for f in files), banned
    assert not any(f.endswith((".npz", ".pyc", ".db")) for f in files)
    assert api.front["sdk"] == "gradio" and api.front["app_file"] == "app.py" and "models" not in api.front


def test_the_space_page_shows_every_picture_and_link_of_the_readme():
    """The Space's page is its README: each relative picture and link in it must be a file of the upload."""
    api = RecordingSpaceApi()
    space.deploy("alice/fmnist", weights="alice/fmnist-weights", api=api)
    relative = [t for t in re.findall(r"\]\(([^)\s#]+)", api.readme_text) if not t.startswith("http")]
    assert {"docs/app.jpg", "docs/photos.md", "CHANGELOG.md"} <= set(relative)
    assert [t for t in relative if t not in api.files] == []
    # and each document the README opens shows its own pictures, named relative to the document
    shown = [
        (doc, posixpath.normpath(posixpath.join(posixpath.dirname(doc), t)))
        for doc in relative
        if doc.endswith(".md")
        for t in re.findall(r"\]\(([^)\s#]+\.(?:png|jpg))", (ROOT / doc).read_text())
    ]
    assert ("docs/photos.md", "docs/photo_grid.jpg") in shown
    assert [s for s in shown if s[1] not in api.files] == []


def test_a_readme_link_outside_the_repository_to_nothing_or_hidden_is_not_sent(tmp_path):
    (tmp_path / "repo" / "docs").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("not for the Space")
    (tmp_path / "repo" / "docs" / "a.png").write_bytes(b"png")
    (tmp_path / "repo" / "docs" / "b[1].png").write_bytes(b"png")  # a name that is a glob pattern too
    (tmp_path / "repo" / ".gpu").mkdir()
    (tmp_path / "repo" / ".gpu" / "plan.json").write_text("{}")
    (tmp_path / "repo" / "README.md").write_text(
        "![a](docs/a.png) ![b](docs/b[1].png) [s](../secret.txt) [m](docs/missing.md) "
        "[w](https://example.com/x.png) [h](#limits) [g](.gpu/plan.json)"
    )
    assert space.readme_links(tmp_path / "repo") == [".gpu/plan.json", "docs/a.png", "docs/b[1].png"]
    assert space.space_files(tmp_path / "repo") == ["docs/a.png", "docs/b[1].png"]  # never a hidden folder


def test_what_a_linked_document_links_to_is_sent_too(tmp_path):
    (tmp_path / "repo" / "docs").mkdir(parents=True)
    for name in ("docs/a.png", "docs/more.md", "docs/c.png", "top.png"):
        (tmp_path / "repo" / name).write_text("x")
    (tmp_path / "repo" / "README.md").write_text("[docs](docs/a.md) [back](README.md)")
    (tmp_path / "repo" / "docs" / "a.md").write_text("![a](a.png) [more](more.md) ![t](../top.png) [r](../README.md)")
    (tmp_path / "repo" / "docs" / "more.md").write_text("![c](c.png) [a](a.md)")  # a cycle ends
    assert space.readme_links(tmp_path / "repo") == ["docs/a.md", "docs/a.png", "docs/c.png", "docs/more.md", "top.png"]


def test_weights_from_a_model_repo_set_the_variable_and_the_front_matter():
    api = RecordingSpaceApi()
    space.deploy("alice/fmnist", weights="alice/fmnist-weights", api=api)
    assert ("add_space_variable", "alice/fmnist", "FMNIST_HUB_REPO", "alice/fmnist-weights") in api.calls
    assert api.front["models"] == ["alice/fmnist-weights"]
    assert not any(f.startswith("checkpoints/") for f in api.files)  # the app loads them from the repo


def test_the_repository_front_matter_names_no_model_repo():
    """The README's own front matter must not point at a repo nobody pushed; deploy adds the one given."""
    assert "models" not in metadata_load(ROOT / "README.md")


def test_a_failed_deploy_says_so_without_the_token(monkeypatch):
    with pytest.raises(space.DeployError) as e:
        space.deploy("alice/fmnist", api=RecordingSpaceApi(fail_on="create_repo"), token=SECRET)
    assert SECRET not in str(e.value) and "again" in str(e.value)


@pytest.mark.parametrize("bad", ["fmnist", "alice/", "a/b/c"])
def test_a_space_id_that_is_not_user_slash_name_is_refused(bad):
    with pytest.raises(space.DeployError, match="USER/NAME"):
        space.deploy(bad, api=RecordingSpaceApi())


def test_without_a_token_the_command_says_how_to_get_one(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_TOKEN_PATH", str(tmp_path / "token"))
    assert space.main(["deploy", "alice/fmnist"]) == 2
    assert "hf auth login" in capsys.readouterr().err
    assert os.environ.get("HF_TOKEN") is None
