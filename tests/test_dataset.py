"""python -m fmnist.dataset: a tags CSV whose label column a person filled becomes a dataset that `datasets` loads,
bad rows are named, nothing is left half-written, and push sends one commit to a dataset repo."""

import csv
import io

import numpy as np
import pytest
from PIL import Image

from fmnist import CLASS_NAMES, dataset
from fmnist.tag.core import CSV_HEADER


def _pictures(folder, n=6):
    """n small garment-like photos, each different: a dark item of its own size on a light surface."""
    folder.mkdir()
    names = []
    for k in range(n):
        img = Image.new("RGB", (160, 120), (220, 215, 205))
        img.paste((40 + 20 * k, 40, 60), (40 + 3 * k, 20, 110, 100))
        # a name that holds "test" or "val", as shops' files do, must not send a picture to another split
        names.append(f"p{k}_test.jpg" if k % 2 else f"p{k}-val.png")
        img.save(folder / names[-1], quality=90)
    return names


def _tags(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        for file, label in rows:
            writer.writerow([file, "Shirt", "0.6100", "Coat", "0.2", "Pullover", "0.1", "", "", label])
    return path


def test_the_tag_command_leaves_a_label_column_and_build_makes_what_datasets_loads(tmp_path, monkeypatch):
    from fmnist.tag.cli import main as tag_main

    names = _pictures(tmp_path / "photos")
    tags = tmp_path / "tags.csv"
    assert tag_main([str(tmp_path / "photos"), "--out", str(tags), "--workers", "0"]) == 0
    with open(tags, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0][-1] == "label" and all(r[-1] == "" for r in rows[1:])
    # a person checks four pictures: two classes (one in lower case), one skip; the rest stay empty
    checked = {names[0]: "t-shirt/top", names[1]: "Ankle boot", names[2]: "skip", names[3]: "Bag"}
    for r in rows[1:]:
        r[-1] = checked.get(r[0].rsplit("/", 1)[-1], "")
    with open(tags, "w", newline="") as f:
        csv.writer(f).writerows(rows)

    out = dataset.build(tmp_path / "photos", tags, tmp_path / "ds")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets

    loaded = datasets.load_dataset("imagefolder", data_dir=str(out), split="train", cache_dir=str(tmp_path / "c"))
    assert sorted(loaded["label"]) == ["Ankle boot", "Bag", "T-shirt/top"]
    assert set(loaded["model_top1"]) <= set(CLASS_NAMES) and all(0 <= p <= 1 for p in loaded["model_p1"])
    assert all(isinstance(im, Image.Image) for im in loaded["image"])
    card = (out / "README.md").read_text()
    front = card.split("---")[1]
    assert "task_categories:\n- image-classification" in front and '- "Ankle boot"' in front
    assert "| Bag | 1 |" in card and "| Dress | 0 |" in card and "1 marked `skip`" in card


def test_every_bad_row_is_named_and_nothing_is_written(tmp_path):
    names = _pictures(tmp_path / "photos")
    (tmp_path / "photos" / "copy.png").write_bytes((tmp_path / "photos" / names[0]).read_bytes())
    tags = _tags(
        tmp_path / "tags.csv",
        [(names[0], "Shirt"), (names[1], "Jumper"), ("gone.jpg", "Coat"), ("copy.png", "Shirt"), (names[2], "")],
    )
    with pytest.raises(dataset.DatasetError) as e:
        dataset.build(tmp_path / "photos", tags, tmp_path / "ds")
    lines = str(e.value).splitlines()
    assert lines[0].startswith(f"row 3 ({names[1]}): 'Jumper' is not a class")
    assert lines[1] == f"row 4 (gone.jpg): no such picture in {tmp_path / 'photos'}"
    assert lines[2] == "row 5 (copy.png): the same picture as row 2; keep one of them"
    assert not (tmp_path / "ds").exists() and not (tmp_path / "ds.partial").exists()


def test_an_existing_folder_is_not_overwritten_and_a_csv_without_labels_is_explained(tmp_path):
    names = _pictures(tmp_path / "photos", 2)
    tags = _tags(tmp_path / "tags.csv", [(names[0], "Coat")])
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "mine.txt").write_text("keep")
    with pytest.raises(dataset.DatasetError, match="already exists and is not empty"):
        dataset.build(tmp_path / "photos", tags, tmp_path / "ds")
    assert (tmp_path / "ds" / "mine.txt").read_text() == "keep"
    old = tmp_path / "old.csv"
    old.write_text("file,top1,p1\nx.png,Coat,0.9\n")
    assert dataset.main(["build", str(tmp_path / "photos"), str(old), str(tmp_path / "new")]) == 2


class RecordingDatasetApi:
    """Stands in for huggingface_hub.HfApi, which cannot be reached from here: it records each call."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/datasets/{repo_id}"

    def create_commit(self, repo_id, operations, **kwargs):
        ops = list(operations)
        files = {op.path_in_repo: open(op.path_or_fileobj, "rb").read() for op in ops}
        self.calls.append(("create_commit", repo_id, files, kwargs))


def test_push_creates_a_dataset_repo_and_sends_one_commit(tmp_path, monkeypatch):
    names = _pictures(tmp_path / "photos", 3)
    out = dataset.build(tmp_path / "photos", _tags(tmp_path / "t.csv", [(n, "Sneaker") for n in names]), tmp_path / "d")
    api = RecordingDatasetApi()
    url = dataset.push(out, "shop/corrected", private=True, token="hf_x", api=api)
    assert url == "https://huggingface.co/datasets/shop/corrected"
    (_, repo, kwargs), (_, repo2, files, commit) = api.calls
    assert repo == repo2 == "shop/corrected" and kwargs["repo_type"] == "dataset" and kwargs["private"] is True
    assert commit["repo_type"] == "dataset"
    assert set(files) == {*(f"train/{n}" for n in names), "train/metadata.csv", "README.md"}
    assert "image-classification" in files["README.md"].decode()
    rows = list(csv.DictReader(io.StringIO(files["train/metadata.csv"].decode())))
    assert [r["label"] for r in rows] == ["Sneaker"] * 3 and np.all([f"train/{r['file_name']}" in files for r in rows])


def test_a_failed_push_says_so_in_a_sentence_without_the_token(tmp_path, monkeypatch, capsys):
    names = _pictures(tmp_path / "photos", 1)
    out = dataset.build(tmp_path / "photos", _tags(tmp_path / "t.csv", [(names[0], "Bag")]), tmp_path / "d")
    secret = "hf_SeCrEt0123456789"

    class Refusing(RecordingDatasetApi):
        def create_commit(self, repo_id, operations, **kwargs):
            raise ConnectionError(f"refused: Authorization: Bearer {secret}")

    monkeypatch.setattr("huggingface_hub.HfApi", lambda token=None: Refusing())
    monkeypatch.setenv("HF_TOKEN", secret)
    assert dataset.main(["push", str(out), "shop/tags"]) == 2
    err = capsys.readouterr().err
    assert "pushing" in err and "failed (ConnectionError: refused" in err and "nothing local was changed" in err
    assert secret not in err and "***" in err and "Traceback" not in err


def test_push_without_a_token_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    names = _pictures(tmp_path / "photos", 1)
    out = dataset.build(tmp_path / "photos", _tags(tmp_path / "t.csv", [(names[0], "Bag")]), tmp_path / "d")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert dataset.main(["push", str(out), "shop/tags"]) == 2
    assert "no Hugging Face token" in capsys.readouterr().err
