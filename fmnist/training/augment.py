"""Training augmentation, batched on the training device: shifts, flips, turns and zoom, erasing, the
degradations a photo's preprocessing leaves (`photo_degrade`) and prints inside the silhouette
(fmnist.training.prints).

Every draw comes from the generator passed in, so a resumed run sees exactly the batches it would have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from fmnist.training.prints import print_items, uniform


@dataclass
class AugmentConfig:
    shift_px: int = 2  # pad by this many pixels, then crop 28x28 at a random offset; 0 turns it off
    hflip: bool = True
    rotate_deg: float = 0.0  # a random rotation in [-rotate_deg, rotate_deg] degrees; 0 turns it off
    zoom: float = 0.0  # a random scale in [1 - zoom, 1 + zoom]; 0 turns it off
    erase_p: float = 0.0  # chance of one random rectangle set to zero per image; 0 turns it off
    erase_max_frac: float = 0.25  # largest side of the rectangle, as a fraction of 28
    photo_p: float = 0.0  # chance per image of the degradations a photo's preprocessing leaves (`photo_degrade`)
    print_p: float = 0.0  # chance per image of a print inside its silhouette (fmnist.training.prints)


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Batched augmentation of (B, 1, H, W) images in [0, 1], on x's device, drawn from gen."""
    b, _, h, w = x.shape
    dev = x.device
    if cfg.print_p > 0:  # first, on the item as the data set shows it; the geometry then moves print and all
        x = print_items(x, cfg.print_p, gen)
    if cfg.shift_px > 0:
        p = cfg.shift_px
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (b,), device=dev, generator=gen)
        dx = torch.randint(0, 2 * p + 1, (b,), device=dev, generator=gen)
        rows = (dy[:, None] + torch.arange(h, device=dev))[:, :, None]  # (B, H, 1)
        cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, :]  # (B, 1, W)
        x = padded[torch.arange(b, device=dev)[:, None, None], 0, rows, cols].unsqueeze(1)
    if cfg.rotate_deg > 0 or cfg.zoom > 0:
        # one affine warp for the batch: rotation and scale about the centre, the background stays black
        angle = (torch.rand(b, device=dev, generator=gen) * 2 - 1) * math.radians(cfg.rotate_deg)
        scale = 1 + (torch.rand(b, device=dev, generator=gen) * 2 - 1) * cfg.zoom
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale  # the grid maps output to input
        zero = torch.zeros_like(cos)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)  # (B, 2, 3)
        grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        x = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if cfg.hflip:
        flip = torch.rand(b, device=dev, generator=gen) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    if cfg.erase_p > 0:
        max_side = max(1, int(round(cfg.erase_max_frac * h)))
        eh = torch.randint(1, max_side + 1, (b,), device=dev, generator=gen)
        ew = torch.randint(1, max_side + 1, (b,), device=dev, generator=gen)
        y0 = (torch.rand(b, device=dev, generator=gen) * (h - eh + 1)).long()
        x0 = (torch.rand(b, device=dev, generator=gen) * (w - ew + 1)).long()
        ys = torch.arange(h, device=dev)[None, :, None]
        xs = torch.arange(w, device=dev)[None, None, :]
        box = (
            (ys >= y0[:, None, None])
            & (ys < (y0 + eh)[:, None, None])
            & (xs >= x0[:, None, None])
            & (xs < (x0 + ew)[:, None, None])
        )
        apply = torch.rand(b, device=dev, generator=gen) < cfg.erase_p
        x = x.masked_fill((box & apply[:, None, None])[:, None], 0.0)
    if cfg.photo_p > 0:
        x = photo_degrade(x, cfg.photo_p, gen)
    return x


def _chance(b: int, p: float, gen: torch.Generator, device) -> torch.Tensor:
    """(B, 1, 1, 1) bools, each True with chance p."""
    return (torch.rand(b, device=device, generator=gen) < p)[:, None, None, None]


def photo_degrade(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """What turning a phone photo into a 28x28 item does to it, drawn independently per image with chance p.

    Each effect is generic, not one scene generator's: the intensity of a photographed item is measured against
    a backdrop that is rarely white and a light that is rarely even, so
    - light parts of the item may vanish (a levels cut-off) and the tone curve differ (gamma);
    - a coloured fabric shows as a floor of intensity over the whole silhouette, its small gaps closed;
    - the crop is resampled from a blurrier picture (a partial Gaussian blur);
    - a faint residue of the backdrop (a ramp of a few per cent) can remain beside the item;
    then the item is stretched to the full range again, as the pipeline does. x is (B, 1, H, W) in [0, 1]."""
    b, dev = x.shape[0], x.device
    apply = _chance(b, p, gen, dev)
    cut = uniform(b, 0.0, 0.25, gen, dev)
    y = ((x - cut) / (1 - cut)).clamp(0, 1)
    y = y.pow(torch.exp(uniform(b, -0.6, 0.6, gen, dev)))
    pool = torch.nn.functional.max_pool2d
    solid = pool((x > 0.05).float(), 3, 1, 1)
    solid = -pool(-solid, 3, 1, 1)  # a closing: gaps of a pixel or two are filled
    floor = uniform(b, 0.0, 0.7, gen, dev) * _chance(b, 0.5, gen, dev)
    y = torch.maximum(y, floor * solid)
    kernel = torch.tensor([0.25, 0.5, 0.25], device=dev)
    kernel = (kernel[:, None] * kernel[None, :])[None, None]
    blurred = torch.nn.functional.conv2d(y, kernel, padding=1)
    y = y + uniform(b, 0.0, 1.0, gen, dev) * (blurred - y)
    h, w = x.shape[-2:]
    angle = uniform(b, 0.0, 2 * math.pi, gen, dev)
    ys = torch.linspace(-0.5, 0.5, h, device=dev)[None, None, :, None]
    xs = torch.linspace(-0.5, 0.5, w, device=dev)[None, None, None, :]
    ramp = (torch.cos(angle) * xs + torch.sin(angle) * ys + 0.5).clamp(0, 1)
    residue = uniform(b, 0.0, 0.08, gen, dev) * ramp * (1 - pool(solid, 3, 1, 1))
    y = y + residue * _chance(b, 0.5, gen, dev)
    peak = y.amax(dim=(2, 3), keepdim=True).clamp_min(1e-6)
    y = (y / peak).clamp(0, 1)
    return torch.where(apply, y, x)
