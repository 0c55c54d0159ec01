"""Domain-randomised photo data: the cache python -m fmnist.photo.build writes (training items rendered as photos,
through the real pipeline) and how training mixes it in."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from conftest import ROOT, needs_real_data
from fmnist.data import Split, load_raw, stratified_split
from fmnist.photo.cache import DEFAULT_PATH, PhotoDataError, load_photo_data, pipeline_sha256
from fmnist.training.loader import DeviceLoader

BUILD = [sys.executable, "-m", "fmnist.photo.build"]


def build(out, *extra):
    return subprocess.run(
        [*BUILD, "--train-items", "8", "--val-items", "4", "--workers", "1", "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "photo-data.npz"
    proc = build(path)
    assert proc.returncode == 0, proc.stderr
    return path


@needs_real_data
def test_the_cache_is_deterministic_and_never_draws_test_or_held_out_pictures(tiny_cache, tmp_path):
    again = tmp_path / "again.npz"
    assert build(again).returncode == 0
    a, b = load_photo_data(tiny_cache), load_photo_data(again)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.train.labels, b.train.labels)
    with np.load(tiny_cache) as z:
        train_sources, renderers = z["train_source_index"], set(z["train_renderer"].tolist())
        val_sources = z["val_source_index"]
    assert "opaque" not in renderers  # the held-out renderer stays out of training
    # indices into the 60k training images: the train part from train.py's training split, the val part from
    # its validation split (seed 0, 6,000 held out), never the test file
    raw_train = load_raw(allow_download=False)
    train_idx, val_idx = stratified_split(raw_train.train_labels, 6000, 0)
    assert set(train_sources) <= set(train_idx.tolist()) and set(val_sources) <= set(val_idx.tolist())
    # each cached picture is the pipeline's 28x28 output, labelled as its source item
    assert a.train.images.shape[1:] == (28, 28) and a.train.images.dtype == torch.uint8
    assert torch.equal(a.train.labels, torch.from_numpy(raw_train.train_labels[train_sources].astype(np.int64)))
    assert a.meta["command"].startswith("python -m fmnist.photo.build")


def test_the_loader_swaps_the_share_asked_for_and_labels_follow_their_pictures():
    n = 4000
    base = Split(torch.zeros(n, 28, 28, dtype=torch.uint8), torch.zeros(n, dtype=torch.long))
    mix = Split(torch.full((50, 28, 28), 255, dtype=torch.uint8), torch.full((50,), 7, dtype=torch.long))
    loader = DeviceLoader(base, 500, shuffle=True, seed=3, mix=mix, mix_share=0.3)
    swapped = total = 0
    for x, y in loader:
        from_mix = x.flatten(1).amax(1) > 0.5
        assert torch.equal(from_mix, y == 7)  # a swapped picture carries its own label
        swapped, total = swapped + int(from_mix.sum()), total + len(y)
    assert total == n and abs(swapped / n - 0.3) < 0.03
    again = [y for _, y in DeviceLoader(base, 500, shuffle=True, seed=3, mix=mix, mix_share=0.3)]
    assert torch.equal(torch.cat(again), torch.cat([y for _, y in loader]))  # seeded: a resume sees the same


def test_a_missing_or_broken_cache_is_refused_with_the_command_that_builds_it(tmp_path):
    with pytest.raises(PhotoDataError, match="fmnist.photo.build"):
        load_photo_data(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(PhotoDataError, match="cannot be read"):
        load_photo_data(tmp_path / "bad.npz")


def test_the_repository_photo_data_is_drawn_by_todays_pipeline_and_a_stale_one_warns(tmp_path, caplog):
    # the bundled detectors are fitted on it and training learns from it: drawn by another pipeline, it would
    # teach pictures the app no longer makes
    with caplog.at_level("WARNING", logger="fmnist.photo.cache"):
        current = load_photo_data(DEFAULT_PATH)
    assert current.meta["pipeline_sha256"] == pipeline_sha256() and not caplog.records
    with np.load(DEFAULT_PATH) as z:
        arrays = {k: z[k] for k in z.files}
    stale = tmp_path / "stale.npz"
    np.savez(stale, **arrays | {"meta": np.asarray(json.dumps(current.meta | {"pipeline_sha256": "0" * 64}))})
    with caplog.at_level("WARNING", logger="fmnist.photo.cache"):
        load_photo_data(stale)
    assert "another photo pipeline" in caplog.text and f"fmnist.photo.build --out {stale}" in caplog.text


def test_train_py_refuses_a_share_without_a_cache():
    out = subprocess.run(
        [sys.executable, "train.py", "--models", "mlp", "--photo-share", "0.3"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 2 and "--photo-data" in out.stderr


@needs_real_data
def test_printed_and_turned_garments_enter_the_cache_only_when_asked(tiny_cache, tmp_path):
    varied = tmp_path / "varied.npz"
    proc = build(varied, "--print-share", "1", "--tilt-share", "1", "--tilt-deg", "30")
    assert proc.returncode == 0, proc.stderr
    with np.load(varied) as z, np.load(tiny_cache) as plain:
        assert z["train_printed"].all() and z["val_printed"].all()
        assert (np.abs(z["train_tilt_deg"]) <= 30).all() and (z["train_tilt_deg"] != 0).all()
        assert not plain["train_printed"].any() and (plain["train_tilt_deg"] == 0).all()
        # the same items, drawn otherwise: printed and turned pictures differ from the plain ones
        assert np.array_equal(z["val_source_index"], plain["val_source_index"])
        assert not np.array_equal(z["val_images"], plain["val_images"])
    assert json.loads(str(np.load(varied)["meta"]))["variation"] == {
        "print_share": 1.0,
        "tilt_share": 1.0,
        "tilt_deg": 30.0,
        "floor_share": 0.0,
    }


@needs_real_data
def test_light_garments_on_dark_floors_enter_the_cache_only_when_asked(tiny_cache, tmp_path):
    floored = tmp_path / "floors.npz"
    proc = build(floored, "--floor-share", "1")
    assert proc.returncode == 0, proc.stderr
    with np.load(floored) as z, np.load(tiny_cache) as plain:
        assert set(z["train_renderer"].tolist()) == set(z["val_renderer"].tolist()) == {"floors"}
        assert set(z["val_level"].tolist()) <= {"everyday", "hard"}
        assert "floors" not in set(plain["train_renderer"].tolist()) | set(plain["val_renderer"].tolist())
        assert np.array_equal(z["val_source_index"], plain["val_source_index"])
        assert not np.array_equal(z["val_images"], plain["val_images"])


def test_the_floors_renderer_lays_a_garment_lighter_than_the_floor_under_it():
    from fmnist.photo.render import floors

    item = np.zeros((28, 28), np.uint8)
    item[4:24, 8:20] = 200  # a plain item, brighter than the backdrop in the data set's negative
    for i, level in enumerate(floors.LEVELS * 3):
        rng = np.random.default_rng(i)
        picture = np.asarray(floors.render(item, level, rng).convert("L"), np.float32)
        h, w = picture.shape
        border = np.concatenate([picture[: h // 20].ravel(), picture[-h // 20 :].ravel()])
        # the item is the brightest part of the picture, the floor at most 0.4 of white
        assert np.percentile(picture, 99.5) > np.median(border) + 40 and np.median(border) < 0.45 * 255
    with pytest.raises(ValueError, match="level"):
        floors.render(item, "pale", np.random.default_rng(0))
