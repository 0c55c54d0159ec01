"""Finding the item: seeds where the picture surely differs from its backdrop (lightness, colour apart from
shading, sharp edges), grown over the pale parts by a graph cut, then closed, filled and split into items."""

from __future__ import annotations

import numpy as np

from fmnist.photo import morph
from fmnist.photo.backdrop import EDGE_FLOOR, backdrop_is_textured, border_ring, fit_backdrop
from fmnist.photo.decode import grey_of

# Lightness in CIELAB L* units (0-100). A soft shadow darkens a light backdrop by up to ~20 L* units; a
# garment that is not much darker than the backdrop is found by its edges or its colour.
LIGHTNESS_STRONG = 22.0  # on a light backdrop; on a dark one shadows do not show, and noise sets the bar
CHROMA_STRONG = 0.15  # in RGB-over-grey units: a muted colour (saturation 0.2) differs from grey by ~0.1-0.2
EDGE_NOISE_FACTOR = 5.0  # an edge is this many times the backdrop's own gradient noise
OTHER_ITEM_SHARE = 0.3  # a second region at least this share of the largest one counts as another item
PART_GAP = 0.04  # regions closer than this share of the picture's side are parts of one item (sandal straps)
INSIDE_SHARE = 0.6  # a region with this share of its box inside the largest region's box is part of that item
# A pixel within this many robust standard deviations of the backdrop's own variation (lightness, colour,
# edges) is backdrop for certain: region growing starts from there (3 sigma, the usual bound of noise)
BACKDROP_SPREAD = 3.0
TEXTURE_QUANTILE = 99  # on a textured backdrop, item cues must exceed this percentile of the ring's own
TEXTURE_SIZE = 0.015  # on a textured backdrop, detail thinner than this share of the picture's side is wiped out
SPECK_GAP = 4  # px at the working size: darker pixels this close are one region when shadows are measured
GRABCUT_ROUNDS = 3  # GrabCut's rounds of refitting its colour models: the cut settles by the third
# When nothing passes those bars (a pale, soft-edged item on white: a mint sneaker, a beige sandal), the seeds
# are what differs from the backdrop by this many robust standard deviations of its own variation, as on a dark
# backdrop; floors of FAINT_LIGHT L* units and FAINT_CHROMA keep a flat backdrop's rounding out
FAINT_SIGMA = 6.0
FAINT_LIGHT = 3.0
FAINT_CHROMA = 0.03
# A lamp's hard shadow has sharp edges, so it seeds and joins the item; it is the item's silhouette moved aside.
# Where the item's own part (lighter, or of a colour of its own) is most of the mask, the only-darker band
# outside it goes when the silhouette, moved by up to CAST_REACH of its size, covers at least CAST_MATCH of it
CAST_REACH = 0.15
CAST_MATCH = 0.5
CAST_SIDE = 0.01  # and the move is at least this share of the item's size along both axes
# A white item on a near-white surface: its body lies within the backdrop's noise and only a seam or sole seeds,
# but its outline still differs from the backdrop. When what the item's undecided pixels enclose (gaps of
# OUTLINE_GAP px closed) is more than 1 / OUTLINE_SHARE times the item found, and is apart from the picture's
# edges, it is the item
OUTLINE_GAP = 2
OUTLINE_SHARE = 0.5


def segment(rgb: np.ndarray) -> tuple[np.ndarray, dict]:
    """The item mask at this resolution, and what the segmentation measured.

    On a textured backdrop the item is found on a median-filtered copy, which wipes out lines and grain
    thinner than TEXTURE_SIZE while a garment keeps its body; the intensity still comes from the picture."""
    from scipy import ndimage as ndi
    from skimage import color, filters

    h, w, _ = rgb.shape
    lab = color.rgb2lab(rgb)
    picture_grey = grey_of(rgb)  # the intensity's source, on a textured backdrop too
    textured = backdrop_is_textured(lab)
    if textured:
        from skimage.filters.rank import median
        from skimage.morphology import disk

        size = max(1, round(TEXTURE_SIZE * max(h, w) / 2))
        rgb = (
            np.stack([median((rgb[..., c] * 255).round().astype(np.uint8), disk(size)) for c in range(3)], axis=2)
            / 255.0
        )
        lab = color.rgb2lab(rgb)
    grey = grey_of(rgb)
    backdrop, explained = fit_backdrop(np.concatenate([lab, grey[..., None], rgb], axis=2))
    d_light = lab[..., 0] - backdrop[..., 0]  # CIELAB lightness difference
    # colour apart from shading: each pixel's RGB over its own grey, against the backdrop's. A shadow scales
    # all three channels alike and leaves this unchanged; a red shirt on a grey table changes it a lot.
    hue = (rgb + 0.05) / (grey[..., None] + 0.05)  # a neutral grey is (1, 1, 1) at any lightness
    backdrop_hue = (backdrop[..., 4:7] + 0.05) / (backdrop[..., 3:4] + 0.05)
    d_chroma = np.linalg.norm(hue - backdrop_hue, axis=2)
    light_backdrop = float(np.median(backdrop[..., 0])) > 50
    # sharp edges: the gradient of the lightness difference, against the backdrop's own gradient noise
    edges = filters.sobel(filters.gaussian(d_light, sigma=1.0))
    noise = float(np.median(edges[explained])) if explained.any() else float(np.median(edges))
    light_noise = _spread(np.abs(d_light), explained)
    light_bar = LIGHTNESS_STRONG if light_backdrop else max(6 * light_noise, 3.0)
    chroma_noise = _spread(d_chroma, explained)
    # each cue as a multiple of its bar: above 1 a pixel is surely item (a seed)
    edge_bar = max(EDGE_NOISE_FACTOR * noise, EDGE_FLOOR)
    chroma_bar = max(CHROMA_STRONG, 4 * chroma_noise)
    if textured:  # what the texture itself reaches on the border ring (grout, grain) is not item either
        ring = border_ring(h, w)
        light_bar = max(light_bar, float(np.percentile(np.abs(d_light[ring]), TEXTURE_QUANTILE)))
        chroma_bar = max(chroma_bar, float(np.percentile(d_chroma[ring], TEXTURE_QUANTILE)))
        edge_bar = max(edge_bar, float(np.percentile(edges[ring], TEXTURE_QUANTILE)))
    evidence = np.maximum.reduce([np.abs(d_light) / light_bar, d_chroma / chroma_bar, edges / edge_bar])
    # region growing: the seeds grow over the pixels that differ from the backdrop more than the backdrop
    # varies (a pale garment's body, a faint shadow), by a graph cut (_grow). Such a pixel is probably item when
    # it has a colour of its own or is lighter than the backdrop, or lies within the seeds' outline; one that
    # is only darker, outside the outline, is probably a shadow, and starts on the backdrop's side.
    light_spread = BACKDROP_SPREAD * light_noise + 1.0
    coloured = d_chroma >= BACKDROP_SPREAD * chroma_noise + 0.02
    backdrop_like = (np.abs(d_light) < light_spread) & ~coloured & (edges <= BACKDROP_SPREAD * noise)
    only_darker = (d_light <= -light_spread) & ~coloured
    # a 28x28 data-set image is exact already: its faint pixels stay as they are; on a textured backdrop
    # growth would run along the texture's lines (grout) as along a pale body, so there the seeds are the item
    grow = min(h, w) >= 64 and not textured
    info = {
        "textured": textured,
        "light_backdrop": light_backdrop,
        "grey": picture_grey,
        "backdrop_grey": backdrop[..., 3],
        "d_chroma": d_chroma,
        "items": 0,
        "found": False,
        "clutter": 0.0,
        "unexplained": 0.0,
    }
    strong = evidence > 1
    labels, areas = _regions(strong, backdrop_like, only_darker, rgb, grow)
    if not len(areas) and grow:  # nothing passed the bars: the faint seeds, against the backdrop's own noise
        faint = (
            np.maximum(
                np.abs(d_light) / max(FAINT_SIGMA * light_noise, FAINT_LIGHT),
                d_chroma / max(FAINT_SIGMA * chroma_noise, FAINT_CHROMA),
            )
            > 1
        )
        labels, areas = _regions(faint | strong, backdrop_like, only_darker, rgb, grow)
    if not len(areas):
        return np.zeros((h, w), bool), info
    order = np.argsort(-areas)
    min_area = _speck_area(h, w)
    # regions within a small gap of the largest are parts of the same item; others of comparable size are
    # further items
    near = ndi.distance_transform_edt(labels != order[0] + 1) <= max(2.0, PART_GAP * max(h, w))
    joined = set(np.unique(labels[near & (labels > 0)]).tolist())
    # and so are regions lying mostly within its box: the pieces of a print or a fold that came apart from the
    # garment's faint body (two garments side by side have boxes apart)
    boxes = ndi.find_objects(labels)
    main = boxes[order[0]]
    for i, b in enumerate(boxes):
        inside = [max(0, min(b[k].stop, main[k].stop) - max(b[k].start, main[k].start)) for k in (0, 1)]
        if inside[0] * inside[1] >= INSIDE_SHARE * (b[0].stop - b[0].start) * (b[1].stop - b[1].start):
            joined.add(i + 1)
    joined = np.asarray(sorted(joined))
    item = np.isin(labels, joined)
    if grow:
        item = _within_outline(item, ~backdrop_like)
        unshaded = _unlike_shade(rgb, grey, backdrop, explained)
        item = without_cast_shadow(item, (d_light <= -light_spread) & ~unshaded, (d_light >= light_spread) | unshaded)
    # a region the item's outline took in (_within_outline) is part of it, not another item
    inside = ndi.sum_labels(item, labels, index=np.arange(1, len(areas) + 1)) > 0.5 * areas
    others = [areas[i] for i in order[1:] if i + 1 not in joined and not inside[i]]
    info["items"] = 1 + int(np.sum(np.asarray(others) >= max(min_area, OTHER_ITEM_SHARE * areas[order[0]])))
    info["found"] = True
    info |= _surroundings(item, strong, explained)
    return item, info


def _surroundings(item: np.ndarray, strong: np.ndarray, explained: np.ndarray) -> dict:
    """What the rest of the picture holds, away from the item (a margin of twice the parts' gap): the share of it
    that surely differs from the backdrop (`clutter`), and the share the smooth backdrop does not explain
    (`unexplained`). A garment on a surface leaves little of either; a scene whose one part was found, a lot."""
    h, w = item.shape
    away = ~morph.dilate(item, iterations=2 * _gap_radius(h, w))
    if not away.any():
        return {"clutter": 0.0, "unexplained": 0.0}
    return {"clutter": float(strong[away].mean()), "unexplained": float((~explained)[away].mean())}


def _unlike_shade(rgb: np.ndarray, grey: np.ndarray, backdrop: np.ndarray, explained: np.ndarray) -> np.ndarray:
    """Pixels that no shading of the backdrop explains. A shadow scales the backdrop's RGB down: each pixel is
    measured against the backdrop scaled to the pixel's own grey (the same for any depth of shadow, unlike the
    colour cue's offset ratios, which a deep shadow on a tinted table exceeds), relative to that grey plus 0.2
    (a dark pixel's noise is not a colour: a grey shop photo's darkest parts are shading too), and must differ
    by more than the backdrop's own spread of it, plus a floor of 0.03 (JPEG's colour at a sharp edge)."""
    scaled = backdrop[..., 4:7] * (grey / np.maximum(backdrop[..., 3], 0.02))[..., None]
    off = np.linalg.norm(rgb - scaled, axis=2) / (grey + 0.2)
    return off >= BACKDROP_SPREAD * _spread(off, explained) + 0.03


def without_cast_shadow(item: np.ndarray, shade: np.ndarray, distinct: np.ndarray) -> np.ndarray:
    """The item without a hard shadow beside it. A lamp's shadow is as sharp as the item's outline, so it seeds
    and stays in the mask; beside a pale garment it is then the darkest thing there, and the model sees its band.
    Where most of the mask is the item's own (lighter than the backdrop, or of a colour of its own), the
    only-darker pixels outside that part are a shadow when they are where the part's silhouette falls when moved
    aside: the move (up to CAST_REACH of the item's size) whose uncovered crescent covers the most of them, by
    overlap over union (cross-correlations by FFT), must reach CAST_MATCH, and be a move along both axes. A grey
    garment (darker only, most of its mask), the darker print inside a pale one and a darker band along one
    side only (a sole, a hem) are left alone. Benchmarked by benchmarks/hard_shadows.py."""
    from scipy import ndimage as ndi
    from scipy.signal import fftconvolve

    darker = item & shade
    own = morph.opening(item & distinct, iterations=2)  # not the thin light ringing along the shadow's edge
    if own.sum() < 0.5 * item.sum() or darker.sum() < 0.02 * item.sum():
        return item
    h, w = item.shape
    body = ndi.binary_fill_holes(closed(own, _gap_radius(h, w)))
    band = darker & ~body
    if band.sum() < 0.02 * item.sum():
        return item
    ys, xs = np.nonzero(item)
    size = max(np.ptp(ys), np.ptp(xs)) + 1
    reach, side = max(2, round(CAST_REACH * size)), max(2, round(CAST_SIDE * size))
    top, left = max(0, ys.min() - reach), max(0, xs.min() - reach)
    box = (slice(top, ys.max() + reach + 1), slice(left, xs.max() + reach + 1))
    b, s = body[box].astype(float), band[box].astype(float)
    # for a move d: covered(d) = |body moved by d, on the band|; crescent(d) = |body moved by d, off the body|
    covered = fftconvolve(s, b[::-1, ::-1], mode="full")
    crescent = b.sum() - fftconvolve(b, b[::-1, ::-1], mode="full")
    cy, cx = b.shape[0] - 1, b.shape[1] - 1  # the zero move
    window = (slice(cy - reach, cy + reach + 1), slice(cx - reach, cx + reach + 1))
    covered, crescent = covered[window], crescent[window]
    match = covered / np.maximum(crescent + s.sum() - covered, 1.0)
    match[reach, reach] = 0.0
    best = np.unravel_index(int(np.argmax(match)), match.shape)
    dy, dx = best[0] - reach, best[1] - reach
    # a move along one axis alone uncovers a strip along one side, where an item can have a part of its own that
    # is only darker (a white shoe's grey sole on a grey floor): such a band is left as it is
    if match[best] < CAST_MATCH or min(abs(dy), abs(dx)) < side:
        return item
    moved = ndi.shift(body, (dy, dx), order=0)
    cast = item & ~body & morph.dilate(moved, iterations=2)  # the shadow and its soft fringe
    # and the item's edge pixels that the shadow darkened (blended with it, they would be its darkest line)
    return item & ~morph.dilate(cast, iterations=2)


def _within_outline(item: np.ndarray, undecided: np.ndarray) -> np.ndarray:
    """The item with what its outline encloses, when the seeds found only a small part of it. A white shoe on
    a white sheet seeds along its sole alone, and the graph cut gives its body, of the backdrop's own colour, to
    the backdrop; but the pixels that are not surely backdrop (the faint edge, the shading) still draw its
    outline. The region they enclose, with gaps of OUTLINE_GAP px closed, counts when it holds the item, is at
    least 1 / OUTLINE_SHARE times its size and touches no edge of the picture (an uneven light that no backdrop
    fit explains spreads to the edges; an item lying in the picture is surrounded by backdrop). Where the seeds
    found most of it (a dark garment and its soft shadow), nothing changes. Benchmarked by
    benchmarks/white_on_white.py."""
    from scipy import ndimage as ndi

    enclosed, _ = ndi.label(ndi.binary_fill_holes(closed(undecided, OUTLINE_GAP)))
    ids = np.unique(enclosed[item])
    region = np.isin(enclosed, ids[ids > 0])
    if not region.any() or item.sum() >= OUTLINE_SHARE * region.sum():
        return item
    if region[0].any() or region[-1].any() or region[:, 0].any() or region[:, -1].any():
        return item
    h, w = item.shape
    return item | morph.opening(region, iterations=max(1, _gap_radius(h, w) // 2))  # not its thin threads


def _spread(values: np.ndarray, where: np.ndarray) -> float:
    """A robust standard deviation of values that lie around zero (the backdrop's own residuals): 1.4826 times
    their median over the pixels in where, 0 when there are none."""
    return 1.4826 * float(np.median(values[where])) if where.any() else 0.0


def _gap_radius(h: int, w: int) -> int:
    """The radius (px) of the closing that joins an item's pieces: 1.2 % of the picture's longer side."""
    return max(1, round(0.012 * max(h, w)))


def _speck_area(h: int, w: int) -> float:
    """Regions smaller than this (pixels) are specks, not items."""
    return max(4, 0.002 * h * w)


def _regions(
    seeds: np.ndarray, backdrop_like: np.ndarray, only_darker: np.ndarray, rgb: np.ndarray, grow: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The seeds grown (when grow), their outlines closed, what they enclose filled and specks dropped (sizes
    relative to the picture): (labelled regions, their areas), no areas when no region is larger than a speck."""
    from scipy import ndimage as ndi

    h, w = seeds.shape
    if grow:
        seeds = _grow(seeds, backdrop_like & ~seeds, only_darker & ~seeds, rgb)
    r = _gap_radius(h, w)
    mask = ndi.binary_fill_holes(closed(seeds, r))
    if min(h, w) >= 64:
        mask = morph.opening(mask, iterations=max(1, r // 2))
    labels, n = ndi.label(mask)
    areas = ndi.sum_labels(np.ones_like(labels), labels, index=np.arange(1, n + 1))
    if n and areas.max() < _speck_area(h, w):  # specks only
        return labels, areas[:0]
    return labels, areas


def closed(mask: np.ndarray, r: int) -> np.ndarray:
    """A morphological closing over gaps of up to 2r pixels; padded first, so that the picture's edge closes
    nothing."""
    return morph.closing(np.pad(mask, r), iterations=r)[r:-r, r:-r]


def _grow(seeds: np.ndarray, backdrop: np.ndarray, shadow_like: np.ndarray, rgb: np.ndarray) -> np.ndarray:
    """Item seeds grown by a graph cut (OpenCV's GrabCut), seeded from what is certain: the seeds are item,
    the backdrop-like pixels backdrop, and the undecided pixels joined to a seed probably item. GrabCut fits a
    colour model to each side and cuts where the two models and the picture's edges agree, so a pale body
    whose colour differs from the backdrop's stays item even where its outline has gaps. (A marker watershed
    on the colour gradient, used before, let the backdrop flood such a body through the outline's weakest
    point: README, "Pale garments", and benchmarks/results/photos-val-pale-{before,after}-cpu.json.)

    shadow_like pixels (only darker than the backdrop) start on the backdrop's side unless they lie within
    the seeds' outline or form a region larger than it: a soft shadow beside the item stays out, a pale grey body
    inside its outline stays in, and so does a grey body whose outline is too soft to seed it (a shadow is never
    larger than the item that casts it)."""
    import cv2
    from scipy import ndimage as ndi
    from skimage import morphology

    if not backdrop.any():  # nothing is surely backdrop (a data-set image: item on pure black): keep the seeds
        return seeds
    seeds = morphology.remove_small_objects(seeds, max_size=max(4, seeds.size // 20000))  # specks seed nothing
    if not seeds.any():
        return seeds
    # only pixels joined to a seed through undecided ones are probably item: work inside their box
    labels, _ = ndi.label(~backdrop)
    reach = np.isin(labels, np.unique(labels[seeds]))
    rows, cols = np.flatnonzero(reach.any(1)), np.flatnonzero(reach.any(0))
    pad = 8  # px: a margin of backdrop around the item for the backdrop's colour model
    top, bottom = max(0, rows[0] - pad), min(seeds.shape[0], rows[-1] + pad + 1)
    left, right = max(0, cols[0] - pad), min(seeds.shape[1], cols[-1] + pad + 1)
    box = (slice(top, bottom), slice(left, right))
    # within the outline: the seeds closed over gaps of up to ~5 % of the picture's side, holes filled
    r = max(2, round(0.025 * max(seeds.shape)))
    outline = ndi.binary_fill_holes(closed(seeds[box], r))
    shadow = shadow_like[box] & ~outline
    # a shadow is cast by the item, so it is never larger than what the seeds outline: a darker region that
    # is, is the body of a grey garment whose own edges are too soft to outline it. A region is measured with
    # its gaps of a few pixels closed: a faint body's noise splits its darker pixels into specks
    parts, n = ndi.label(closed(shadow, SPECK_GAP) & ~outline)
    if n:
        sizes = ndi.sum_labels(np.ones_like(parts), parts, index=np.arange(1, n + 1))
        shadow &= ~np.isin(parts, 1 + np.flatnonzero(sizes > outline.sum()))
    marks = np.where(
        seeds[box],
        cv2.GC_FGD,
        np.where(backdrop[box] | shadow, cv2.GC_BGD, np.where(reach[box], cv2.GC_PR_FGD, cv2.GC_PR_BGD)),
    ).astype(np.uint8)
    if not (marks == cv2.GC_BGD).any():
        return seeds
    bgr = np.ascontiguousarray((rgb[box] * 255).round().astype(np.uint8)[..., ::-1])
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)  # GrabCut's two colour models
    # GrabCut starts its colour models with k-means from OpenCV's per-thread random generator: seeded here, a
    # picture's mask depends on the picture alone, not on what this thread cut before (a batch worker and the
    # app's own request gave probabilities 3e-5 apart)
    cv2.setRNGSeed(0)
    cv2.grabCut(bgr, marks, None, *models, GRABCUT_ROUNDS, cv2.GC_INIT_WITH_MASK)
    grown = seeds.copy()
    grown[box] = (marks == cv2.GC_FGD) | (marks == cv2.GC_PR_FGD)
    return grown
