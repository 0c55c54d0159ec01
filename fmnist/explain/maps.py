"""What an answer rests on: saliency maps for every fmnist model, by one entry point.

    maps = explain(model, images)                      # the method recorded for this model (config.json)
    maps = explain(model, images, method="occlusion")  # (B, 28, 28) float32 in [0, 1], higher = more important

Methods:
- gradcam: Grad-CAM (Selvaraju et al. 2017) on the model's `gradcam_layer`, the gradient averaged over the map
  (fmnist.explain.gradcam). It suits a global-pool head; for heads that flatten the map into dense layers it says
  little (issue 48 measured it below a random map on deep_cnn and basic_cnn).
- hirescam: HiResCAM (Draelos & Carin 2020): the gradient times the activation element by element, summed over
  channels. It is exactly what a dense head reads from each position; on the MLP, whose layer is the input, it
  is gradient x input.
- occlusion: how much the class's probability falls when a square of the 28x28 is blacked out (the data set's
  background), averaged over every square covering a pixel. OCCLUSION_PATCH and OCCLUSION_STRIDE below give 36
  squares, run as one batch a picture.
- rise: RISE (Petsiuk et al. 2018): the class's probability over RISE_MASKS random smooth masks, each pixel's
  score the mean probability of the masks that keep it. One batch of RISE_MASKS a picture.

Which one a model shows, and its faithfulness beside the baselines', is chosen on validation images by
`python -m benchmarks.faithfulness` and recorded in the model's config.json as `explanation`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fmnist.explain.gradcam import _minmax, grad_cam

METHODS = ("gradcam", "hirescam", "occlusion", "rise")
DEFAULT_METHOD = "gradcam"  # for a model whose config.json records no choice
# Sized so that the map fits TIME_BUDGET_MS on resnet, one thread (python -m benchmarks.faithfulness records
# each method's time). On 100 validation images, resnet's occlusion with 36 squares of 8 px (58 ms) was as
# faithful as 64 of 6 px (95 ms) or 144 of 6 px (228 ms): deletion 0.808 / 0.790 / 0.802, insertion 0.709 /
# 0.738 / 0.727; RISE with 96 masks gave deep_cnn deletion 0.835 (256 masks: 0.866) in a third of the time.
OCCLUSION_PATCH = 8  # px of the 28x28: about a sleeve's width
OCCLUSION_STRIDE = 4  # 6 positions a side, 36 squares
RISE_MASKS = 96
RISE_CELLS = 7  # the masks' coarse grid, upsampled to 28x28 with a random shift (as in the RISE paper)
RISE_KEEP = 0.5
CHUNK = 1024  # images per forward pass of the perturbation methods


NAMES = {"gradcam": "Grad-CAM", "hirescam": "HiResCAM", "occlusion": "occlusion", "rise": "RISE"}


def map_title(model: torch.nn.Module) -> str:
    """The heat map panel's title: its method."""
    return f"Where it looked: {NAMES[method_for(model)]}"


def map_note(model: torch.nn.Module) -> str:
    """The method's faithfulness beside a random map's, on the test images (explanation.json): the deletion
    score, higher is better."""
    config = getattr(model, "explanation", None)
    if not config:
        return ""
    test = config["test"]
    return f"deletion {test[config['method']]['deletion']:.2f} (random map {test['random']['deletion']:.2f})"


def method_for(model: torch.nn.Module) -> str:
    """The method recorded for this model (its config's `explanation`), or DEFAULT_METHOD."""
    config = getattr(model, "explanation", None) or {}
    return config.get("method", DEFAULT_METHOD)


def explain(
    model: torch.nn.Module, images: torch.Tensor, targets=None, method: str | None = None, seed: int = 0
) -> np.ndarray:
    """Saliency maps (B, 28, 28) float32 in [0, 1], higher = more important, for images (B, 1, 28, 28) in
    [0, 1] and targets (a class per image, or one class for all; default: the predicted class). method None:
    the model's recorded method. Deterministic for a given seed (rise's masks)."""
    method = method or method_for(model)
    if method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; choose from {', '.join(METHODS)}")
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images must be (B, 1, H, W), got {tuple(images.shape)}")
    idx = _targets(model, images, targets)
    if method == "gradcam":
        return grad_cam(model, images, idx.tolist())[0]
    if method == "hirescam":
        return _hirescam(model, images, idx)
    if method == "occlusion":
        return _occlusion(model, images, idx)
    return _rise(model, images, idx, seed)


def _targets(model, images, targets) -> torch.Tensor:
    """(B,) the class to explain per image, as a plain tensor (never an inference-mode one: autograd uses it)."""
    if targets is None:
        with torch.no_grad():
            return model(images).argmax(1)
    if isinstance(targets, int):
        targets = [targets] * len(images)
    idx = torch.tensor(np.asarray(targets.tolist() if torch.is_tensor(targets) else targets), device=images.device)
    if idx.ndim != 1 or len(idx) != len(images):
        raise ValueError(f"{idx.numel()} targets for a batch of {len(images)} images")
    return idx.long()


def _hirescam(model, images, idx) -> np.ndarray:
    with torch.enable_grad():
        x = images.detach().requires_grad_(True)
        acts = model.features(model.normalize(x))  # (B, C, h, w)
        logits = model.head(acts)
        (grads,) = torch.autograd.grad(logits.gather(1, idx[:, None]).sum(), acts)
    cam = F.relu((grads * acts).sum(1, keepdim=True)).detach()
    cam = F.interpolate(_minmax(cam), size=images.shape[-2:], mode="bilinear", align_corners=False)
    return _minmax(cam)[:, 0].float().cpu().numpy()


@torch.inference_mode()
def _probabilities(model, batch: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """softmax(model(batch))[k, idx[k]], CHUNK images at a time."""
    out = [
        torch.softmax(model(batch[i : i + CHUNK]).float(), 1).gather(1, idx[i : i + CHUNK, None])[:, 0]
        for i in range(0, len(batch), CHUNK)
    ]
    return torch.cat(out)


def occlusion_masks(size: int = 28, patch: int | None = None, stride: int | None = None) -> torch.Tensor:
    """(N, 1, size, size): 1 inside each square, 0 elsewhere (default: OCCLUSION_PATCH, OCCLUSION_STRIDE)."""
    patch, stride = patch or OCCLUSION_PATCH, stride or OCCLUSION_STRIDE
    starts = range(0, size - patch + 1, stride)
    masks = torch.zeros(len(starts) ** 2, 1, size, size)
    for k, (y, x) in enumerate((y, x) for y in starts for x in starts):
        masks[k, :, y : y + patch, x : x + patch] = 1
    return masks


def _occlusion(model, images, idx) -> np.ndarray:
    masks = occlusion_masks(images.shape[-1]).to(images.device)  # (N, 1, H, W)
    cover = masks.sum(0)[0].clamp(min=1)
    maps = []
    for image, target in zip(images, idx):
        base = _probabilities(model, image[None], target[None])  # (1,)
        occluded = image[None] * (1 - masks)  # (N, 1, H, W): each square blacked out
        drop = base - _probabilities(model, occluded, target.repeat(len(masks)))  # (N,)
        maps.append((drop[:, None, None] * masks[:, 0]).sum(0) / cover)
    return _minmax(torch.stack(maps)[:, None])[:, 0].float().cpu().numpy()


def rise_masks(
    n: int | None = None, size: int = 28, cells: int = RISE_CELLS, keep: float = RISE_KEEP, seed: int = 0
) -> torch.Tensor:
    """(n, 1, size, size) smooth random masks in [0, 1]: a cells x cells grid of kept cells, upsampled to
    (cells + 1) * cell px and cut at a random shift (Petsiuk et al. 2018); n defaults to RISE_MASKS."""
    n = n or RISE_MASKS
    g = torch.Generator().manual_seed(seed)
    cell = -(-size // cells)  # ceil
    grid = (torch.rand(n, 1, cells, cells, generator=g) < keep).float()
    up = F.interpolate(grid, size=((cells + 1) * cell,) * 2, mode="bilinear", align_corners=False)
    dy, dx = torch.randint(0, cell, (2, n), generator=g)
    return torch.stack([up[k, :, dy[k] : dy[k] + size, dx[k] : dx[k] + size] for k in range(n)])


def _rise(model, images, idx, seed: int) -> np.ndarray:
    masks = rise_masks(size=images.shape[-1], seed=seed).to(images.device)
    maps = []
    for image, target in zip(images, idx):
        p = _probabilities(model, image[None] * masks, target.repeat(len(masks)))  # (N,)
        maps.append((p[:, None, None] * masks[:, 0]).sum(0) / masks[:, 0].sum(0).clamp(min=1e-6))
    return _minmax(torch.stack(maps)[:, None])[:, 0].float().cpu().numpy()


def summary_table(folders) -> str:
    """Markdown: each model's shown map and its faithfulness on the test images beside the three baselines
    (from each folder's explanation.json), for the app's About tab."""
    import json
    from pathlib import Path

    lines = ["| model | heat map shown | deletion | insertion | ROAD | ms a picture |", "|---|---|---|---|---|---|"]
    for folder in folders:
        path = Path(folder) / "explanation.json"
        if not path.is_file():
            continue
        e = json.loads(path.read_text())
        test, method = e["test"], e["method"]
        cells = [
            f"**{test[method][t]:.3f}** (random {test['random'][t]:.3f}, blob {test['blob'][t]:.3f}, "
            f"brightness {test['brightness'][t]:.3f})"
            for t in ("deletion", "insertion", "road")
        ]
        lines.append(
            f"| `{Path(folder).name}` | {NAMES[method]} | " + " | ".join(cells) + f" | {e['ms_per_image']:.0f} |"
        )
    return "\n".join(lines)
