"""fmnist.explain.maps: one entry point for every saliency method, and the map each bundled model shows beating a
random map on the deletion test (fmnist.explain.faithfulness). The full benchmark: python -m benchmarks.faithfulness."""

import numpy as np
import pytest
import torch

from conftest import ROOT, needs_real_data, real_data_dir
from fmnist.checkpoints import store
from fmnist.explain.faithfulness import baseline_maps, blob_maps, deletion, insertion, random_maps
from fmnist.explain.maps import METHODS, explain, method_for

FOLDERS = store.model_folders(ROOT / "checkpoints")
pytestmark = pytest.mark.skipif(not FOLDERS, reason="no bundled checkpoints")


@pytest.fixture(scope="module")
def models():
    return {f.name: store.load_folder(f)[0] for f in FOLDERS}


@pytest.fixture(scope="module")
def test_images():
    from fmnist.data import load_raw

    raw = load_raw(real_data_dir(), allow_download=False)
    return torch.from_numpy(raw.test_images[:32].copy()).float().div(255)[:, None]


@needs_real_data
@pytest.mark.parametrize("method", METHODS)
def test_every_method_gives_maps_of_the_images_shape_in_0_1_the_same_each_time(models, test_images, method):
    for name, model in models.items():
        x = test_images[:3]
        maps = explain(model, x, method=method)
        assert maps.shape == (3, 28, 28) and maps.dtype == np.float32, name
        peaks = maps.max((1, 2))  # scaled to 1, or all 0 where a CAM's ReLU leaves nothing
        assert maps.min() >= 0 and maps.max() <= 1 + 1e-6 and np.all((abs(peaks - 1) < 1e-4) | (peaks == 0)), name
        assert (peaks > 0).any(), name
        assert np.array_equal(maps, explain(model, x, method=method)), name
        assert not model.training  # no method leaves the model in another mode


@needs_real_data
def test_a_target_is_explained_for_that_class(models, test_images):
    model = models["resnet"]
    x = test_images[:2]
    for method in METHODS:
        trouser, bag = explain(model, x, targets=1, method=method), explain(model, x, targets=8, method=method)
        assert trouser.shape == bag.shape == (2, 28, 28) and not np.allclose(trouser, bag), method
    with pytest.raises(ValueError, match="3 targets for a batch of 2"):
        explain(model, x, targets=[1, 2, 3], method="occlusion")


def test_bad_arguments_are_refused(models):
    model = next(iter(models.values()))
    with pytest.raises(ValueError, match="unknown explanation method 'lime'"):
        explain(model, torch.zeros(1, 1, 28, 28), method="lime")
    with pytest.raises(ValueError, match=r"must be \(B, 1, H, W\)"):
        explain(model, torch.zeros(28, 28), method="occlusion")


def test_each_bundled_model_records_the_method_it_shows(models):
    for folder in FOLDERS:
        model = models[folder.name]
        assert (folder / store.EXPLANATION_NAME).is_file(), folder.name
        assert method_for(model) == model.explanation["method"] and method_for(model) in METHODS


@needs_real_data
def test_the_shown_map_beats_random_maps_on_deletion_for_every_bundled_model(models, test_images):
    """On 32 test images, explained for the predicted class: the method each model shows removes what the
    answer rests on sooner than random smooth maps and a centred blob do."""
    for name, model in models.items():
        with torch.inference_mode():
            targets = model(test_images).argmax(1)
        shown = deletion(model, test_images, explain(model, test_images, targets), targets).mean()
        rand = deletion(model, test_images, random_maps(len(test_images)), targets).mean()
        blob = deletion(model, test_images, blob_maps(len(test_images)), targets).mean()
        assert shown > rand and shown > blob, (name, method_for(model), shown, rand, blob)


@needs_real_data
def test_deletion_and_insertion_tell_a_map_from_its_opposite(models, test_images):
    """The tests themselves: the image's brightness (where the item is) against its negative (the background
    first). Deleting the item first must lower the class's probability sooner, and inserting it first raise
    it sooner."""
    model = models["resnet"]
    with torch.inference_mode():
        targets = model(test_images).argmax(1)
    bright = baseline_maps("brightness", test_images)
    assert (
        deletion(model, test_images, bright, targets).mean() > deletion(model, test_images, 1 - bright, targets).mean()
    )
    assert (
        insertion(model, test_images, bright, targets).mean()
        > insertion(model, test_images, 1 - bright, targets).mean()
    )
