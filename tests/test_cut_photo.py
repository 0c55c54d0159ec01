"""fmnist.photo.render.cut draws what it says: the same picture, cut through the item on one side."""

import numpy as np

from fmnist.photo.render.cut import cut_photo


def a_shirt() -> np.ndarray:
    """A 28x28 item: a body with two sleeves, shaded."""
    item = np.zeros((28, 28), np.uint8)
    item[4:26, 8:20] = 150
    item[4:12, 3:25] = 120
    item[6:24, 12:16] = 200
    return item


def test_a_cut_picture_is_the_whole_one_cut_through_the_item_on_one_side():
    whole = np.asarray(cut_photo(a_shirt(), 0.0, 11))
    cuts = [np.asarray(cut_photo(a_shirt(), share, 11)) for share in (0.1, 0.2)]
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
