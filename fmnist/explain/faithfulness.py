"""How faithful a saliency map is to the model it explains: the deletion and insertion tests (Petsiuk et al.
2018), and the honest baselines a map must beat (random smooth maps, a blob at the picture's centre, the
image's own brightness). ROAD (Rong et al. 2022) comes from pytorch-grad-cam in benchmarks.faithfulness.

    scores = deletion(model, images, maps, targets)    # (B,) 1 - area under the probability curve: higher is better
    scores = insertion(model, images, maps, targets)   # (B,) area under the curve: higher is better

images (B, 1, 28, 28) in [0, 1]; maps (B, 28, 28), higher = more important; targets (B,) classes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

STEPS = 20  # 5 % of the pixels at a time
BLUR_SIGMA = 3.0  # px: insertion starts from a copy this blurred, with the item's shape and none of its detail
CHUNK = 2048  # images per forward pass


def _order(maps: np.ndarray | torch.Tensor, seed: int = 0) -> torch.Tensor:
    """(B, H*W) pixel indices, most salient first; ties (a flat region) broken at random, seeded."""
    m = torch.as_tensor(np.asarray(maps), dtype=torch.float64).flatten(1)
    jitter = torch.rand(m.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return torch.argsort(m + 1e-9 * jitter, dim=1, descending=True)


@torch.inference_mode()
def _curve(
    model, start: torch.Tensor, end: torch.Tensor, order: torch.Tensor, targets: torch.Tensor, steps: int
) -> torch.Tensor:
    """(B, steps + 1): the target's probability as the pixels, in order, go from start's values to end's,
    1 / steps of them at a time."""
    b, _, h, w = start.shape
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w).expand(b, -1))  # each pixel's place in the order
    counts = [round(k * h * w / steps) for k in range(steps + 1)]
    batch = torch.stack([torch.where((rank < c).view(b, 1, h, w), end, start) for c in counts], 1)  # (B, S, 1, H, W)
    batch = batch.flatten(0, 1)
    idx = targets.repeat_interleave(steps + 1)
    probs = torch.cat(
        [
            torch.softmax(model(batch[i : i + CHUNK]).float(), 1).gather(1, idx[i : i + CHUNK, None])[:, 0]
            for i in range(0, len(batch), CHUNK)
        ]
    )
    return probs.view(b, steps + 1)


def _area(curve: torch.Tensor) -> np.ndarray:
    return torch.trapezoid(curve, dx=1.0 / (curve.shape[1] - 1), dim=1).cpu().numpy()


def deletion(model, images: torch.Tensor, maps, targets, steps: int = STEPS, seed: int = 0) -> np.ndarray:
    """1 - the area under the target's probability as the most salient pixels are set to 0 (the data set's
    background), 1 / steps at a time. Higher is better: a faithful map removes what the answer rests on first."""
    targets = torch.as_tensor(targets, device=images.device).long()
    return 1.0 - _area(_curve(model, images, torch.zeros_like(images), _order(maps, seed), targets, steps))


def blurred(images: torch.Tensor, sigma: float = BLUR_SIGMA) -> torch.Tensor:
    radius = int(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = k / k.sum()
    out = F.pad(images, (radius,) * 4, mode="reflect" if radius < images.shape[-1] else "replicate")
    out = F.conv2d(out, k.view(1, 1, 1, -1))
    return F.conv2d(out, k.view(1, 1, -1, 1))


def insertion(model, images: torch.Tensor, maps, targets, steps: int = STEPS, seed: int = 0) -> np.ndarray:
    """The area under the target's probability as the most salient pixels are put back onto a blurred copy,
    1 / steps at a time. Higher is better."""
    targets = torch.as_tensor(targets, device=images.device).long()
    return _area(_curve(model, blurred(images), images, _order(maps, seed), targets, steps))


# The baselines: maps that know nothing of the model


def random_maps(n: int, size: int = 28, cells: int = 7, seed: int = 0) -> np.ndarray:
    """(n, size, size) random smooth maps: uniform noise on a cells x cells grid, upsampled bilinearly."""
    g = torch.Generator().manual_seed(seed)
    grid = torch.rand(n, 1, cells, cells, generator=g)
    return F.interpolate(grid, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()


def blob_maps(n: int, size: int = 28, sigma: float = 7.0) -> np.ndarray:
    """(n, size, size) the same Gaussian blob at the picture's centre: the items are centred (the data set's
    conversion), so a blob already knows where an item usually is."""
    x = np.arange(size) - (size - 1) / 2
    blob = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2))
    return np.repeat(blob[None].astype(np.float32), n, 0)


def brightness_maps(images: torch.Tensor) -> np.ndarray:
    """The image itself: the item's pixels are light on black, so brightness already says where the item is."""
    return images[:, 0].float().cpu().numpy()


BASELINES = ("random", "blob", "brightness")


def baseline_maps(name: str, images: torch.Tensor, seed: int = 0) -> np.ndarray:
    if name == "random":
        return random_maps(len(images), images.shape[-1], seed=seed)
    if name == "blob":
        return blob_maps(len(images), images.shape[-1])
    if name == "brightness":
        return brightness_maps(images)
    raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
