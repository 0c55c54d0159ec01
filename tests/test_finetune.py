"""train.py --finetune: a bundled model fine-tuned on checked pictures (an fmnist.dataset folder or a Hub dataset
id) through the app's pipeline, into a folder the app and fmnist.tag load, with before and after recorded, never
into checkpoints/ unless asked, and a fall of the data-set accuracy said loudly and kept from --push."""

import csv
import json
import subprocess
import sys

import pytest

from conftest import ROOT, needs_real_data, real_data_dir
from fmnist import CLASS_NAMES

pytestmark = needs_real_data


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    """40 validation items drawn by the held-out renderer, their true classes as a person's labels, built."""
    from fmnist import dataset
    from fmnist.data import load_splits, stratified_split
    from fmnist.photo.render import render_item
    from fmnist.tag.core import CSV_HEADER

    root = tmp_path_factory.mktemp("shop")
    val = load_splits(real_data_dir(), allow_download=False).val
    images, labels = val.images.numpy(), val.labels.numpy()
    (root / "photos").mkdir()
    with open(root / "tags.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(CSV_HEADER)
        for n, i in enumerate(stratified_split(labels, 40, 9)[1]):
            render_item("opaque", "everyday", images[i], 5, n).convert("RGB").save(root / "photos" / f"p{n}.jpg")
            writer.writerow([f"p{n}.jpg", "Shirt", "0.5", "", "", "", "", "", "", CLASS_NAMES[labels[i]]])
    return dataset.build(root / "photos", root / "tags.csv", root / "ds")


def _fingerprint(folder):
    return {p.relative_to(folder): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


def test_a_finetuned_model_is_saved_reported_and_loaded_by_the_app_and_the_tagger(shop, tmp_path):
    bundled = _fingerprint(ROOT / "checkpoints")
    out = tmp_path / "tuned"
    cmd = [sys.executable, "train.py", "--finetune", "checkpoints/mlp", "--photos", str(shop), "--out", str(out)]
    proc = subprocess.run(
        [*cmd, "--limit", "2000", "--data-dir", str(real_data_dir())], capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "the 12 held-out pictures:" in proc.stdout and "the data-set test set:" in proc.stdout
    config = json.loads((out / "mlp" / "config.json").read_text())
    metrics = json.loads((out / "mlp" / "metrics.json").read_text())
    for record in (config, metrics):
        f = record["finetune"]
        assert (
            f["from"] == "checkpoints/mlp"
            and f["dataset"] == str(shop)
            and (f["trained_on"], f["held_out"]) == (28, 12)
        )
        assert 0 <= f["before"]["held_out"] <= 1 and f["after"]["test"] == metrics["test"]["accuracy"]
    assert config["command"].startswith("python train.py --finetune checkpoints/mlp --photos")
    assert f"on the dataset `{shop}`" in (out / "README.md").read_text()  # the model card names it
    assert _fingerprint(ROOT / "checkpoints") == bundled  # the bundled models are as they were

    from PIL import Image

    from fmnist.serving.predict import Predictor

    predictor = Predictor.from_source(str(out))
    assert predictor.predict(Image.open(shop / "train" / "p0.jpg")).top3[0][0] in CLASS_NAMES
    tagged = tmp_path / "tags.csv"
    tag = [sys.executable, "-m", "fmnist.tag", str(shop / "train"), "--out", str(tagged), "--checkpoints", str(out)]
    assert subprocess.run([*tag, "--workers", "0"], capture_output=True, cwd=ROOT).returncode == 0
    assert len(list(csv.reader(open(tagged)))) == 41


def test_a_hub_dataset_is_fetched_and_a_forgetting_model_is_not_pushed(shop, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    import train
    from fmnist.training import finetune

    asked = []

    def snapshot_download(repo_id, repo_type):  # the Hub cannot be reached from here: record, serve the folder
        asked.append((repo_id, repo_type))
        return str(shop)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(finetune, "TEST_DROP_LIMIT", -1.0)  # any change at all counts as forgetting here
    args = ["--finetune", "checkpoints/mlp", "--photos", "shop/tags", "--out", str(tmp_path / "t"), "--limit", "2000"]
    code = train.main([*args, "--data-dir", str(real_data_dir()), "--epochs", "1", "--push", "--repo-id", "a/b"])
    err = capsys.readouterr().err
    assert asked == [("shop/tags", "dataset")]
    assert code == 2 and "WARNING: the data-set test accuracy fell" in err and "not pushed" in err
    assert (tmp_path / "t" / "mlp" / "model.safetensors").is_file()  # kept, to look at


@pytest.mark.parametrize(
    "args,message",
    [
        (["--finetune", "checkpoints/mlp"], "--finetune CHECKPOINT and --photos DATASET go together"),
        (["--finetune", "checkpoints/nope", "--photos", "x/y"], "not a checkpoint folder"),
        (["--finetune", "checkpoints/mlp", "--photos", "x/y", "--out", "checkpoints"], "a fine-tuned model goes"),
    ],
)
def test_bad_finetune_requests_are_refused_before_any_work(args, message):
    proc = subprocess.run([sys.executable, "train.py", *args], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2 and message in proc.stderr


def test_the_finetune_replays_the_models_own_training_and_averages_with_its_start(caplog, monkeypatch):
    """The data-set part of each batch is drawn as the model's own training drew it: its recorded augmentation
    (prints included) and its rendered photos. Where that photo file has left the tree, it says so and replays
    the repository's photo data; without that either, the data set alone. The result is the average of the
    fine-tuned and the starting weights."""
    import torch

    from fmnist.photo.cache import DEFAULT_PATH
    from fmnist.training.config import TrainConfig
    from fmnist.training.finetune import averaged, own_recipe

    resnet = json.loads((ROOT / "checkpoints" / "resnet" / "config.json").read_text())["train_config"]
    here = resnet | {"photo_data": str(DEFAULT_PATH.relative_to(ROOT))}
    aug, mix, replayed = own_recipe(TrainConfig(), "resnet", here, "cpu")
    assert aug.print_p == resnet["augment"]["print_p"] > 0 and aug.photo_p == resnet["augment"]["photo_p"]
    assert mix is not None and mix.images.shape[1:] == (28, 28) and len(mix) > 1000
    assert replayed == f"data/{DEFAULT_PATH.name}"
    gone = resnet | {"photo_data": "data/no-such-photo-data.npz"}  # a photo data that left the tree
    aug, mix, replayed = own_recipe(TrainConfig(), "resnet", gone, "cpu")
    assert mix is not None and replayed == f"data/{DEFAULT_PATH.name}"
    assert f"no-such-photo-data.npz is not here: the fine-tune replays {DEFAULT_PATH.name}" in caplog.text
    monkeypatch.setattr("fmnist.training.finetune.DEFAULT_PATH", ROOT / "data" / "nor-this.npz")
    assert own_recipe(TrainConfig(), "resnet", gone, "cpu")[1:] == (None, None)
    assert "replays the data set alone" in caplog.text
    aug, mix, replayed = own_recipe(TrainConfig(), "mlp", {}, "cpu")  # a checkpoint that recorded neither
    assert mix is None and replayed is None and aug.print_p == 0

    tuned = {"w": torch.tensor([2.0, 4.0]), "n": torch.tensor(7)}
    start = {"w": torch.tensor([0.0, 0.0]), "n": torch.tensor(3)}
    mean = averaged(tuned, start, 0.5)
    assert torch.equal(mean["w"], torch.tensor([1.0, 2.0])) and int(mean["n"]) == 7
