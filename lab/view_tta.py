"""Would averaging each 28x28 over a few nearby views (test-time augmentation: one-pixel shifts, a slightly
smaller item) read photos better than the one view the pipeline makes?

    python -m lab.view_tta [--model resnet] [--photo-data data/photo-data-v4.npz] [--out view-tta-val]

Like lab.flip_tta (its comparison): the photo data's rendered validation photos (the 28x28 each file stores, so
nothing is rendered again) and the validation items as 28x28 images, classified once as the app does and once with
the logits of several views averaged. Validation only; the photo data's held-out renderers are marked. Results go to
lab/results/<out>-cpu.json.
"""

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from fmnist.checkpoints import store
from fmnist.photo.cache import DEFAULT_PATH
from lab._common import record
from lab.flip_tta import compare

SHIFTS = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]
SCALES = [1.0, 0.93, 0.86]


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """(N, 1, 28, 28) moved by whole pixels, the black background filling in."""
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 - dy : 29 - dy, 1 - dx : 29 - dx]


def scaled(x: torch.Tensor, s: float) -> torch.Tensor:
    """(N, 1, 28, 28) shrunk about the centre by s (bilinear), the black background filling in."""
    theta = torch.tensor([[1 / s, 0, 0], [0, 1 / s, 0]], dtype=x.dtype).expand(len(x), 2, 3)
    return F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), align_corners=False)


def views(way: str, x: torch.Tensor) -> list[torch.Tensor]:
    if way == "as is":
        return [x]
    if way == "shifts":
        return [shifted(x, *d) for d in SHIFTS]
    if way == "scales":
        return [scaled(x, s) for s in SCALES]
    return [shifted(scaled(x, s), *d) for s in SCALES for d in SHIFTS]


WAYS = ("as is", "shifts", "scales", "shifts and scales")


def answers(model: torch.nn.Module, pixels: torch.Tensor) -> dict[str, np.ndarray]:
    """(N, 28, 28) uint8 -> each way's predicted classes (the views' logits averaged)."""
    x = pixels.float().div(255.0).unsqueeze(1)
    out = {}
    for way in WAYS:
        logits = sum(torch.cat([model(b) for b in v.split(512)]) for v in views(way, x))
        out[way] = logits.argmax(1).numpy()
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet")
    p.add_argument("--photo-data", nargs="+", default=[str(DEFAULT_PATH)])
    p.add_argument("--out", default="view-tta-val")
    args = p.parse_args()
    torch.set_grad_enabled(False)
    model, _ = store.load_folder(f"checkpoints/{args.model}")
    model.eval()
    rows = compare(model, answers, args.photo_data)
    path = record(args.out, rows, torch.device("cpu"), {"model": args.model, "shifts": SHIFTS, "scales": SCALES})
    print(f"({path})")


if __name__ == "__main__":
    main()
