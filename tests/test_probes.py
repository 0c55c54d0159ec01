"""The photo probes draw what they say: benchmarks.crumpled bends the garment and nothing else, benchmarks.cropped
cuts the same picture through the item."""

import numpy as np

from benchmarks import cropped
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


def test_a_cut_picture_is_the_whole_one_cut_through_the_item_on_one_side():
    whole = np.asarray(cropped.draw(a_shirt(), 0.0, 11))
    cuts = [np.asarray(cropped.draw(a_shirt(), share, 11)) for share in (0.1, 0.2)]
    for cut in cuts:
        assert cut.shape[:2] != whole.shape[:2] and cut.size < whole.size
        # the same picture: the part kept sits at one corner of the whole one
        hits = [
            (y, x)
            for y in (0, whole.shape[0] - cut.shape[0])
            for x in (0, whole.shape[1] - cut.shape[1])
            if np.array_equal(whole[y : y + cut.shape[0], x : x + cut.shape[1]], cut)
        ]
        assert hits
    assert cuts[1].size < cuts[0].size  # a fifth of the item cut off leaves less than a tenth
    dark = whole.mean(-1) < whole.mean() - 40  # the garment, darker than the light surface
    assert dark.any() and not any((c.mean(-1) < whole.mean() - 40).sum() >= dark.sum() for c in cuts)
