"""Similar items (fmnist/serving/gallery.py): the stored gallery and features, and the nearest-neighbour query."""

import numpy as np
import pytest
import torch

from fmnist.serving import gallery


class Flat(torch.nn.Module):
    """A stand-in with the models' penultimate(): a fixed random projection of the pixels, `width` wide."""

    def __init__(self, width):
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(784, width)

    def penultimate(self, x):
        return torch.relu(self.proj(x.flatten(1)))


def _gallery(tmp_path, n=300):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    return gallery.save_gallery(tmp_path, images, np.arange(n) % 10)


@pytest.mark.parametrize("width", [64, gallery.MAX_DIMS + 44])  # stored as is, and reduced by PCA
def test_every_gallery_image_finds_itself_first(tmp_path, width):
    g = _gallery(tmp_path)
    model = Flat(width)
    folder = tmp_path / "m"
    folder.mkdir()
    gallery.write_features(folder, model, g)
    index = gallery.SimilarItems.load(tmp_path, folder)
    assert tuple(index.features.shape) == (300, min(width, gallery.MAX_DIMS))
    feats = model.penultimate(torch.as_tensor(g.images[:40]).float().div(255)[:, None]).detach()
    for i, f in enumerate(feats):
        nearest = index.nearest(f)
        assert len(nearest) == gallery.NEIGHBOURS and nearest[0][0] == i and nearest[0][1] == g.labels[i]
        assert nearest[0][2] > 0.99 and [s for *_, s in nearest] == sorted((s for *_, s in nearest), reverse=True)


def test_features_of_another_gallery_are_not_used(tmp_path):
    g = _gallery(tmp_path)
    folder = tmp_path / "m"
    folder.mkdir()
    gallery.write_features(folder, Flat(32), g)
    gallery.save_gallery(tmp_path, g.images[::-1].copy(), g.labels)  # the gallery changed under the features
    assert gallery.SimilarItems.load(tmp_path, folder) is None


def test_the_gallery_keeps_every_class_share():
    labels = np.repeat(np.arange(10), 600)
    idx = gallery.choose(labels, 1000, seed=0)
    assert len(idx) == 1000 and np.all(np.bincount(labels[idx]) == 100)


def test_the_stored_gallery_is_compressed_and_reads_back_exactly(tmp_path):
    rng = np.random.default_rng(1)
    images = np.zeros((500, 28, 28), np.uint8)  # data-set-like: a light item on black
    images[:, 6:22, 8:20] = rng.integers(100, 256, (500, 16, 12), dtype=np.uint8)
    g = gallery.save_gallery(tmp_path, images, np.arange(500) % 10)
    back = gallery.load_gallery(tmp_path)
    assert np.array_equal(back.images, images) and np.array_equal(back.labels, np.arange(500) % 10)
    assert back.digest == g.digest  # features written for the raw layout still belong to it
    assert (tmp_path / gallery.GALLERY_NAME).stat().st_size < images.nbytes / 2


def test_int8_features_keep_every_cosine_similarity_within_0_01():
    rng = np.random.default_rng(2)
    feats = rng.normal(size=(400, 128)).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    q, scale = gallery.quantise(feats)
    assert q.dtype == np.int8 and scale.dtype == np.float16 and np.abs(q).max() == 127
    back = q.astype(np.float32) * scale
    assert np.abs(back @ feats.T - feats @ feats.T).max() < 0.01
