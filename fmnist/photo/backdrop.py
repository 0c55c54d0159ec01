"""The backdrop a picture's item lies on: a smooth surface fitted robustly to the picture's border ring, and
whether the backdrop has a texture of its own."""

from __future__ import annotations

import numpy as np

EDGE_FLOOR = 1.5  # and at least this steep (skimage Sobel of L*, sigma-1 blur, at WORK_SIDE); higher splits faint items
# A backdrop is textured when the 95th percentile of its edges is this many times their median (noise: ~2)
TEXTURE_TAIL = 4.0


def _design(ys: np.ndarray, xs: np.ndarray, h: int, w: int) -> np.ndarray:
    y, x = 2 * ys / max(1, h - 1) - 1, 2 * xs / max(1, w - 1) - 1
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=1)


def fit_backdrop(channels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A smooth backdrop fitted robustly to the picture's border ring, and the pixels it explains.
    channels is (h, w, C) with CIELAB in the first three; the residual is measured in those.

    The fit grows from a constant to a plane to a quadratic surface per channel (lighting gradients,
    vignetting), each round keeping only the border pixels the last one explained, so that an item that
    touches the border becomes an outlier before the surface could bend towards it. Interior pixels are
    never fitted: the surface cannot swallow a large item."""
    h, w, c = channels.shape
    ring = border_ring(h, w)
    ys, xs = np.nonzero(ring)
    step = max(1, len(ys) // 8000)  # at most ~8k border pixels
    ys, xs = ys[::step], xs[::step]
    values = channels[ys, xs]
    design = _design(ys.astype(float), xs.astype(float), h, w)
    keep = np.ones(len(ys), bool)
    for terms in (1, 3, 6):  # constant, plane, quadratic
        coef, *_ = np.linalg.lstsq(design[keep, :terms], values[keep], rcond=None)
        resid = np.linalg.norm(values[:, :3] - design[:, :terms] @ coef[:, :3], axis=1)
        spread = 1.4826 * np.median(np.abs(resid[keep] - np.median(resid[keep])))
        keep = resid < np.median(resid[keep]) + max(3 * spread, 4.0)
        if keep.sum() < 12:
            break
    all_y, all_x = np.mgrid[0:h, 0:w]
    backdrop = (_design(all_y.ravel().astype(float), all_x.ravel().astype(float), h, w)[:, :terms] @ coef).reshape(
        h, w, c
    )
    backdrop[..., 0] = backdrop[..., 0].clip(0, 100)
    resid = np.linalg.norm(channels[..., :3] - backdrop[..., :3], axis=2)
    explained = resid < np.median(resid[ring]) + max(3 * spread, 4.0)
    return backdrop, explained


def border_ring(h: int, w: int) -> np.ndarray:
    """The picture's border ring, 3 % of its short side wide: where the backdrop is measured."""
    ring_px = max(1, round(0.03 * min(h, w)))
    ring = np.zeros((h, w), bool)
    ring[:ring_px], ring[-ring_px:], ring[:, :ring_px], ring[:, -ring_px:] = True, True, True, True
    return ring


def backdrop_is_textured(lab: np.ndarray) -> bool:
    """Whether the backdrop has a texture of its own (grout, wood grain, a woven or printed sheet): its edges
    on the border ring are heavy-tailed. Noise alone gives a Rayleigh-like spread of edge strengths, whose
    95th percentile is about twice the median; lines and grain put many times the median there."""
    from skimage import filters

    h, w = lab.shape[:2]
    if min(h, w) < 64:
        return False
    edges = filters.sobel(filters.gaussian(lab[..., 0], sigma=1.0))[border_ring(h, w)]
    q50, q95 = np.percentile(edges, [50, 95])
    return bool(q95 > max(TEXTURE_TAIL * q50, EDGE_FLOOR))
