"""Grad-CAM (Selvaraju et al. 2017) for every fmnist model, safe on one model shared by many requests.

Every fmnist model is `head(features(normalize(x)))`, and `features` ends at the layer the model names
in `gradcam_layer`. So the activations are a plain return value and their gradient comes from
`torch.autograd.grad`: no hooks are registered, nothing is stored on the model, the model's mode is
never changed and no `.grad` is left on its parameters. Concurrent requests share nothing mutable.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def grad_cam(
    model: torch.nn.Module, x: torch.Tensor, target: int | list[int] | None = None
) -> tuple[np.ndarray, torch.Tensor]:
    """Class activation maps for a batch (B, 1, H, W) in [0, 1].

    Returns (cams, logits): cams (B, H, W) float32 in [0, 1], upsampled to the input size; target is
    the class per image (default: the predicted one). Scaling follows pytorch-grad-cam: ReLU, min-max
    per image, bilinear resize, min-max again."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)  # so that the MLP, whose map is its input, has a graph
        acts = model.features(model.normalize(x))  # (B, C, h, w)
        logits = model.head(acts)
        if target is None:
            idx = logits.argmax(1)
        else:
            idx = torch.as_tensor([target] * len(x) if isinstance(target, int) else target, device=logits.device)
            if len(idx) != len(x):
                raise ValueError(f"{len(idx)} targets for a batch of {len(x)} images")
        score = logits.gather(1, idx[:, None]).sum()
        (grads,) = torch.autograd.grad(score, acts)
    weights = grads.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1): the gradient averaged over the map
    cam = F.relu((weights * acts).sum(1, keepdim=True)).detach()  # (B, 1, h, w)
    cam = _minmax(cam)
    cam = F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return _minmax(cam)[:, 0].float().cpu().numpy(), logits.detach()


def _minmax(cam: torch.Tensor) -> torch.Tensor:
    flat = cam.flatten(1)
    lo = flat.min(1).values[:, None, None, None]
    cam = cam - lo
    hi = cam.flatten(1).max(1).values[:, None, None, None]
    return cam / (hi + 1e-7)


def overlay(image_28: np.ndarray, cam: np.ndarray, size: int = 280, alpha: float = 0.45) -> Image.Image:
    """The CAM in the 'jet' colour map over the grey input, both scaled up to size x size pixels."""
    import matplotlib

    grey = Image.fromarray(image_28).resize((size, size), Image.Resampling.NEAREST)
    grey = np.asarray(grey.convert("RGB"), dtype=np.float32) / 255.0
    heat = (
        np.asarray(
            Image.fromarray((cam * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BILINEAR),
            dtype=np.float32,
        )
        / 255.0
    )
    colours = matplotlib.colormaps["jet"](heat)[..., :3]
    mixed = (1 - alpha) * grey + alpha * colours
    return Image.fromarray((mixed * 255).round().astype(np.uint8))
