"""Write examples/: the first test image of each class, as the 28x28 PNGs the app offers as examples.

    python scripts/make_examples.py
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fmnist import CLASS_NAMES  # noqa: E402
from fmnist.data import load_raw  # noqa: E402


def main() -> None:
    raw = load_raw()
    out = Path(__file__).resolve().parents[1] / "examples"
    out.mkdir(exist_ok=True)
    for c, name in enumerate(CLASS_NAMES):
        i = int(np.flatnonzero(raw.test_labels == c)[0])
        slug = name.lower().replace("/", "-").replace(" ", "-")
        Image.fromarray(raw.test_images[i]).save(out / f"{c}_{slug}_test{i}.png")
        print(f"{name}: test image {i}")


if __name__ == "__main__":
    main()
