"""Prints on garments: stripes, checks, dots and large motifs drawn inside an item's silhouette, at a random
scale, angle and contrast, batched on the training device.

Why: a bold print survives the photo pipeline into the 28x28, and a model that has only seen the data set reads
it as a Shirt (many of the data set's shirts are checked flannel), so a striped T-shirt, coat or dress is lost.
Drawn on every class alike, a print stops being a class cue and the silhouette has to decide. The silhouette is
left as it was: a print changes the greys inside the item, never its outline or the black around it.

`print_items` is the training augmentation (`--print-p`, fmnist.training.augment); `print_item` is the same for one
uint8 28x28 item, which the rendered photo data draws as a printed garment (fmnist.photo.build).
"""

from __future__ import annotations

import math

import numpy as np
import torch

KINDS = ("stripes", "checks", "dots", "motifs")
PERIOD_PX = (2.5, 9.0)  # of the 28x28: a pinstripe to a bold block stripe
CONTRAST = (0.3, 0.9)  # how far the print pulls a pixel towards its ink
SILHOUETTE = 0.04  # pixels above this (of 1) are the item; the data set's backdrop is exactly 0


def print_patterns(b: int, h: int, w: int, gen: torch.Generator, dev) -> torch.Tensor:
    """(B, 1, H, W) print coverage in [0, 1]: per image a kind, period, angle, phase and edge sharpness."""
    ys = torch.arange(h, device=dev, dtype=torch.float32)[None, None, :, None]
    xs = torch.arange(w, device=dev, dtype=torch.float32)[None, None, None, :]
    angle = uniform(b, 0.0, math.pi, gen, dev)
    period = uniform(b, *PERIOD_PX, gen, dev)
    u = (xs * torch.cos(angle) + ys * torch.sin(angle)) * (2 * math.pi) / period + uniform(b, 0, 2 * math.pi, gen, dev)
    v = (-xs * torch.sin(angle) + ys * torch.cos(angle)) * (2 * math.pi) / period + uniform(b, 0, 2 * math.pi, gen, dev)
    sharp = uniform(b, 1.5, 12.0, gen, dev)  # soft woven bands to hard printed edges
    stripes = torch.sigmoid(sharp * torch.sin(u))
    checks = 0.5 * (stripes + torch.sigmoid(sharp * torch.sin(v)))  # gingham: two crossing sets of bands
    dots = torch.sigmoid(sharp * (torch.cos(u) * torch.cos(v) - uniform(b, 0.2, 0.6, gen, dev)))
    # motifs: large smooth blobs (flowers, camouflage, logos at 28x28 scale) from upsampled noise
    cells = int(torch.randint(3, 7, (1,), device=dev, generator=gen))
    noise = torch.rand(b, 1, cells, cells, device=dev, generator=gen)
    blobs = torch.nn.functional.interpolate(noise, size=(h, w), mode="bicubic", align_corners=False)
    motifs = torch.sigmoid(sharp * 2 * (blobs - uniform(b, 0.4, 0.7, gen, dev)))
    kind = torch.randint(0, len(KINDS), (b,), device=dev, generator=gen)[:, None, None, None]
    return torch.where(kind == 0, stripes, torch.where(kind == 1, checks, torch.where(kind == 2, dots, motifs)))


def uniform(b: int, lo: float, hi: float, gen: torch.Generator, device) -> torch.Tensor:
    """(B, 1, 1, 1) draws from [lo, hi), one per image (also fmnist.training.augment's)."""
    return (lo + (hi - lo) * torch.rand(b, device=device, generator=gen))[:, None, None, None]


def print_items(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Each item of x (B, 1, H, W) in [0, 1] printed with chance p; then stretched to the full range again, as
    the photo pipeline stretches every item. The ink is dark (towards 1: a dark print on a light garment) or
    light (towards a faint grey: a light print on a dark garment), with its own contrast."""
    b, _, h, w = x.shape
    dev = x.device
    apply = (torch.rand(b, device=dev, generator=gen) < p)[:, None, None, None]
    if not bool(apply.any()):
        return x
    coverage = print_patterns(b, h, w, gen, dev)
    ink = torch.where(torch.rand(b, 1, 1, 1, device=dev, generator=gen) < 0.5, 1.0, uniform(b, 0.1, 0.3, gen, dev))
    contrast = uniform(b, *CONTRAST, gen, dev)
    item = x > SILHOUETTE
    printed = x + contrast * coverage * (ink - x)
    printed = torch.where(item, printed.clamp_min(SILHOUETTE + 0.01), x)  # the silhouette stays whole
    peak = printed.amax(dim=(1, 2, 3), keepdim=True).clamp_min(1e-6)
    return torch.where(apply, printed / peak, x)


def print_item(item28: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One uint8 28x28 item with a print (always), drawn from rng: what fmnist.photo.build renders as a printed
    garment."""
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    x = torch.from_numpy(np.ascontiguousarray(item28)).float().div(255.0)[None, None]
    return (print_items(x, 1.0, gen)[0, 0].numpy() * 255).round().astype(np.uint8)
