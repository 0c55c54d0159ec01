"""The photo probes draw what they say: benchmarks.crumpled bends the garment and nothing else."""

import numpy as np

from benchmarks.crumpled import SHAPES, bend, draw


def a_shirt() -> np.ndarray:
    """A 28x28 item: a body with two sleeves, shaded."""
    item = np.zeros((28, 28), np.uint8)
    item[4:26, 8:20] = 150
    item[4:12, 3:25] = 120
    item[6:24, 12:16] = 200
    return item


def test_the_bend_moves_no_pixel_further_than_its_strength():
    side, strength = 120, 0.08
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32)
    bent_y, bent_x = bend([yy, xx], strength, np.random.default_rng(0))
    inside = (slice(12, -12), slice(12, -12))  # where the pushed-from point is in the frame
    push = np.hypot(bent_y - yy, bent_x - xx)[inside]
    assert 0.5 * strength * side < push.max() <= np.sqrt(2) * strength * side + 1


def test_the_crumpled_photo_is_the_flat_one_with_only_the_garment_bent():
    photos = {shape: np.asarray(draw(a_shirt(), shape, 7), np.int16) for shape in SHAPES}
    flat = photos["flat"]
    for shape in ("loose", "crumpled"):
        assert photos[shape].shape == flat.shape
        changed = np.abs(photos[shape] - flat).max(-1) > 40
        assert changed.any()  # the garment moved
        ys, xs = np.nonzero(changed)
        assert xs.max() - xs.min() < 0.7 * flat.shape[1] and ys.max() - ys.min() < 0.7 * flat.shape[0]
        assert np.array_equal(photos[shape][:16, :16], flat[:16, :16])  # the surface, light and noise are the same
