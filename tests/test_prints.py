"""Prints on garments (fmnist/training/prints.py): the training augmentation that draws stripes, checks, dots and motifs
inside an item's silhouette, so that a print stops being a class cue."""

import numpy as np
import pytest
import torch

from fmnist.training.augment import AugmentConfig, augment
from fmnist.training.prints import SILHOUETTE, print_item, print_items


def _items(b=64):
    """Data-set-like items: a bright body on an exact black backdrop, different sizes."""
    x = torch.zeros(b, 1, 28, 28)
    for i in range(b):
        top, left = 3 + i % 5, 4 + i % 7
        x[i, 0, top : top + 18, left : left + 12] = torch.linspace(0.3, 1.0, 12)
    return x


def test_a_print_changes_the_inside_but_never_the_silhouette():
    x = _items()
    y = print_items(x, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(y > SILHOUETTE, x > SILHOUETTE)  # same item pixels, same black backdrop
    assert torch.equal(y[x <= SILHOUETTE], x[x <= SILHOUETTE])
    changed = (y - x).abs().amax(dim=(1, 2, 3)) > 0.1
    assert changed.float().mean() > 0.9  # nearly every item got a visible print
    assert torch.allclose(y.amax(dim=(1, 2, 3)), torch.ones(len(x)))  # stretched to the full range again


def test_the_chance_of_a_print_is_its_flag():
    x = _items(400)
    y = print_items(x, 0.25, torch.Generator().manual_seed(1))
    share = ((y - x).abs().amax(dim=(1, 2, 3)) > 1e-6).float().mean().item()
    assert 0.17 < share < 0.33
    assert torch.equal(print_items(x, 0.0, torch.Generator().manual_seed(1)), x)


def test_prints_are_replayable_from_their_seed():
    x = _items(8)
    a = print_items(x, 1.0, torch.Generator().manual_seed(3))
    b = print_items(x, 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_the_augmentation_flag_prints_items_and_off_leaves_them_alone():
    x = _items(32)
    plain = AugmentConfig(shift_px=0, hflip=False)
    assert torch.equal(augment(x, plain, torch.Generator().manual_seed(0)), x)
    printed = augment(x, AugmentConfig(shift_px=0, hflip=False, print_p=1.0), torch.Generator().manual_seed(0))
    assert not torch.equal(printed, x) and torch.equal(printed > SILHOUETTE, x > SILHOUETTE)


@pytest.mark.parametrize("seed", [0, 1])
def test_one_uint8_item_gets_a_print_for_the_rendered_photo_data(seed):
    item = (_items(1)[0, 0].numpy() * 255).astype(np.uint8)
    out = print_item(item, np.random.default_rng(seed))
    assert out.dtype == np.uint8 and out.shape == (28, 28)
    assert np.array_equal(out > 0, item > 0) and np.abs(out.astype(int) - item).max() > 25
