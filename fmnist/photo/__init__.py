"""Photos: turning any picture of a garment into the data set's 28x28 (the app's pipeline), drawing data-set
items as photographs (the renderers), and the rendered training data built from them.

- decode: opening an upload safely, its rotation and pixel mode;
- backdrop: the smooth backdrop fitted to the picture's border, and whether it is textured;
- segment: the item's mask (seeds, graph cut, items);
- intensity: the item's grey against the backdrop, wires dropped, the tilt to undo;
- pipeline: preprocess() end to end, and the outline the app shows;
- render: four independent renderers of data-set items as photographs, and pictures that are not garments;
- cache, build: the rendered training data (python -m fmnist.photo.build).
"""

from fmnist.photo.decode import MAX_PIXELS, MIN_SIDE_PX, ImageRejected, open_image, to_grey, to_rgb
from fmnist.photo.pipeline import WORK_SIDE, Preprocessed, outline, preprocess, warm_up

__all__ = [
    "MAX_PIXELS",
    "MIN_SIDE_PX",
    "WORK_SIDE",
    "ImageRejected",
    "Preprocessed",
    "open_image",
    "outline",
    "preprocess",
    "to_grey",
    "to_rgb",
    "warm_up",
]
