"""A garment laid on a light surface and photographed with its frame cut through the item on one side: the
picture a phone takes when a hem or a sleeve is left out. The tests of the app's cut hint draw it, and so do the
photo probes in lab/ (their garment, surface, light and camera steps are these).

Each item is drawn as the same garment (any hue, value 0.25-0.9, its fabric darkened by the item's greys as a
shop photo's) on a light surface with a gentle light gradient, noise and JPEG; `cut_photo(item, 0.2, seed)` is the
same picture with 20 % of the item's extent on one axis outside the frame.
"""

import colorsys
import io

import numpy as np
from PIL import Image
from scipy import ndimage as ndi

CUTS = {"whole": 0.0, "cut 10 %": 0.1, "cut 20 %": 0.2}  # the share of the item's extent outside the frame
SIDES = ("top", "bottom", "left", "right")


def cut_photo(item28: np.ndarray, cut: float, seed: int) -> Image.Image:
    """One photo of the item, its frame cut on one side (the same side and picture for every cut)."""
    rng = np.random.default_rng(seed)
    scene, light, colour, fabric, solid, alpha, side = garment_on_light_surface(item28, rng)
    h, w = scene.shape[:2]
    top, left = placement(h, w, side, rng)
    lay(scene, colour, fabric, light, alpha, top, left)
    photo = snapshot(scene, rng)
    where = SIDES[int(rng.integers(len(SIDES)))]
    if not cut:
        return photo
    ys, xs = np.nonzero(solid)
    y0, y1, x0, x1 = top + ys.min(), top + ys.max() + 1, left + xs.min(), left + xs.max() + 1
    box = {
        "top": (0, y0 + int(cut * (y1 - y0)), w, h),
        "bottom": (0, 0, w, y1 - int(cut * (y1 - y0))),
        "left": (x0 + int(cut * (x1 - x0)), 0, w, h),
        "right": (0, 0, x1 - int(cut * (x1 - x0)), h),
    }[where]
    return photo.crop(box)


def item_layer(item28: np.ndarray, rng: np.random.Generator):
    """A photo's frame and the item in it: (w, h, side, greys, solid silhouette, soft alpha), the item
    side x side pixels, with its faint rim greys set to the mean of its body (no bright rim where they fade)."""
    w, h = int(rng.uniform(700, 1200)), int(rng.uniform(600, 1000))
    side = int(rng.uniform(0.45, 0.7) * min(w, h))
    greys = np.asarray(Image.fromarray(item28).resize((side, side), Image.Resampling.BILINEAR), np.float32) / 255
    solid = ndi.binary_fill_holes(greys > 0.03)
    alpha = ndi.gaussian_filter(solid.astype(np.float32), 0.7)
    inside = greys[solid & (greys > 0.2)]
    greys = np.where(greys > 0.2, greys, inside.mean() if inside.size else 0.5)
    return w, h, side, greys, solid, alpha


def light_field(h: int, w: int, strength: float, rng: np.random.Generator) -> np.ndarray:
    """A gentle linear light gradient from a random direction, up to `strength` across the frame."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    angle = rng.uniform(0, 2 * np.pi)
    return 1 + rng.uniform(0, strength) * (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5))


def placement(h: int, w: int, side: int, rng: np.random.Generator) -> tuple[int, int]:
    """(top, left) of the item: near the centre, within the frame."""
    top = (h - side) // 2 + int(rng.integers(-h // 12, h // 12 + 1))
    left = (w - side) // 2 + int(rng.integers(-w // 12, w // 12 + 1))
    return int(np.clip(top, 0, h - side)), int(np.clip(left, 0, w - side))


def lay(
    scene: np.ndarray, colour: np.ndarray, fabric: np.ndarray, light: np.ndarray, alpha: np.ndarray, top: int, left: int
) -> None:
    """The garment (its colour shaded by its fabric and the light) laid over the scene, in place."""
    side = alpha.shape[0]
    spot = (slice(top, top + side), slice(left, left + side))
    garment = colour[None, None] * fabric[..., None] * light[spot][..., None]
    scene[spot] = alpha[..., None] * garment + (1 - alpha[..., None]) * scene[spot]


def garment_on_light_surface(item28: np.ndarray, rng: np.random.Generator):
    """The draws benchmarks.crumpled and benchmarks.cropped share: the frame and the item (item_layer), a light,
    nearly grey surface under a gentle light gradient, and a garment of any hue at value 0.25-0.9 whose fabric is
    darkened by the item's greys as a shop photo's. -> (scene, light, colour, fabric, solid, alpha, side)."""
    w, h, side, greys, solid, alpha = item_layer(item28, rng)
    surface = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.15), rng.uniform(0.85, 0.97)), np.float32)
    light = light_field(h, w, 0.12, rng)
    scene = surface[None, None] * light[..., None]
    colour = np.array(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0, 0.8), rng.uniform(0.25, 0.9)), np.float32)
    fabric = 1 - rng.uniform(0.3, 0.6) * greys
    return scene, light, colour, fabric, solid, alpha, side


def snapshot(scene: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """The scene with a phone's noise (sigma 0.004-0.015) as a JPEG of quality 75-94."""
    h, w = scene.shape[:2]
    return jpeg(scene + rng.normal(0, rng.uniform(0.004, 0.015), (h, w, 1)), int(rng.integers(75, 95)))


def jpeg(scene: np.ndarray, quality: int) -> Image.Image:
    """The scene (float RGB) as a JPEG of that quality, opened again."""
    out = io.BytesIO()
    Image.fromarray((np.clip(scene, 0, 1) * 255).round().astype(np.uint8)).save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue()))
