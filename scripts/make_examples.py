"""Write examples/: the first test image of each class, as the 28x28 PNGs the app offers as examples; and
examples/photos/: phone-like pictures of test items drawn by the photo benchmark's renderers, labelled as
rendered, and one picture that is not a garment, to show the notice.

    python -m scripts.make_examples
"""

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from fmnist import CLASS_NAMES
from fmnist.data import load_raw

ROOT = Path(__file__).resolve().parents[1]

# (renderer, level, class): a spread of scenes and classes; the first test item of the class is drawn
PHOTOS = [
    ("tint", "clean", 6),
    ("scenes", "everyday", 1),
    ("opaque", "everyday", 7),
    ("pattern", "textured", 0),
    ("tint", "hard", 9),
]


def slug(name: str) -> str:
    return name.lower().replace("/", "-").replace(" ", "-")


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    from fmnist.photo.render import render_item
    from fmnist.photo.render.non_garments import _flower

    raw = load_raw()
    out = ROOT / "examples"
    out.mkdir(exist_ok=True)
    for c, name in enumerate(CLASS_NAMES):
        i = int(np.flatnonzero(raw.test_labels == c)[0])
        Image.fromarray(raw.test_images[i]).save(out / f"{c}_{slug(name)}_test{i}.png")
        print(f"{name}: test image {i}")
    photos = out / "photos"
    photos.mkdir(exist_ok=True)
    for renderer, level, c in PHOTOS:
        i = int(np.flatnonzero(raw.test_labels == c)[1])
        picture = render_item(renderer, level, raw.test_images[i], 0, i).convert("RGB")
        picture.thumbnail((1600, 1600))  # an example need not be 12 MP
        exif = picture.getexif()
        picture.save(photos / f"rendered_{renderer}-{level}_{slug(CLASS_NAMES[c])}_test{i}.jpg", quality=88, exif=exif)
        print(f"rendered {renderer}/{level}: {CLASS_NAMES[c]} (test image {i})")
    _flower(np.random.default_rng(0)).save(photos / "not-a-garment_flower.jpg", quality=88)


if __name__ == "__main__":
    main()
