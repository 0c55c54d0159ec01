"""The notice's rules that need no model, read from what the segmentation found (no item, an "item" that fills
the frame, a shape no garment has, several items), the rules that judge the whole picture rather than the region
found in it (a busy picture, a small thing at the edge, a thing mostly outside the picture, a thing across the
picture), and the hints about how a picture was taken."""

from __future__ import annotations

from fmnist.photo import Preprocessed

# Shape rules, set outside what the 60,000 training items show: their long-to-short side ratio is at most 7.0
# (99.9th percentile 4.7), and 0.5 % of them touch all four edges of their frame.
MAX_ASPECT = 7.5
# An "item" that touches all four edges and covers more than this share of the picture is a scene or noise.
# Validation items that touch all four edges (ankle boots, bags, 2 % of them) cover at most 84 %.
FRAME_FILL = 0.9
# A hint, not a notice: the item lies along more than this share of one side of the picture (but not along all
# four), so a part of it may be outside the frame. Set on validation (python -m lab.cut_hint).
CUT_REACH = 0.02
# The whole picture, not only what was found (docs/photos.md). Set on validation pictures only: garment photos of
# every renderer and level and photos cut by the frame, against the old and new non-garment kinds at seeds 1 and 2
# (python -m lab.picture_signals; lab/results/picture-signals-val-cpu.json): none of the garment photos of the
# renderers the limits were chosen on, nor of the cut ones, passes them.
# - away from the item, this share of the picture surely differs from the backdrop: noise, a crowd of things
BUSY_CLUTTER = 0.1
# - or this share is not the smooth backdrop the border shows (a scene), on a backdrop that is not textured
BUSY_UNEXPLAINED = 0.25
# - an item that runs off the picture's edge and covers less than this share of it: a fragment of something
#   larger, or a thing beside the frame (photos of garments cut by the frame cover 2-45 %)
EDGE_FILL = 0.05
# - an item that lies along two opposite sides (more than this share of each): a band running out of the picture
#   on both sides, like hills, a street or a grain, is part of something larger. No validation garment photo,
#   whole or cut by the frame, lies along two opposite sides; 26 of 296 validation non-garments do
#   (python -m lab.picture_signals; lab/results/picture-signals-v3-val-cpu.json).
ACROSS_REACH = 0.02
# - an item cut by the picture's edge along more than its size allows for a thing seen mostly whole (cut_ratio):
#   most of it is outside, so it may be part of something larger. A round thing cut through its middle reaches
#   sqrt(8 / pi) = 1.6. On validation (python -m lab.edge_cut; lab/results/edge-cut-val-cpu.json), garment photos
#   cut by a tenth or a fifth of the item stay at or under 1.55, and half the things beside the frame (edge
#   objects) pass 1.6; garments cut by 30-50 % pass it in 4-8 %.
CUT_OUT = 1.6
# - a small item (under this share of the picture) cut by the edge along more than its size (cut_ratio over
#   SMALL_CUT_RATIO): wider along the cut than it reaches in, like the half of a box or a ball beside the frame.
#   On validation (python -m lab.picture_signals --per-cell 60 --seeds 1 2 30 31 32 33 34 35 36 37 38 39 --out
#   picture-signals-v4-val), garment photos cut by the frame that cover under 10 % stay at or under 0.95, and the
#   ones over 1.0 cover at least 11 %; 8 of 96 edge objects passed every other rule, all between 5 and 10 % and
#   between 1.03 and 1.55.
SMALL_CUT_FILL = 0.1
SMALL_CUT_RATIO = 1.0
# - the rest of the picture is not a plain surface (over this share unexplained, on a backdrop that is not
#   textured) and what was found is only loosely like a garment: the outlier head's score within
#   BUSY_OUTLIER_MARGIN of its limit (fmnist.serving.predict, `part of a scene`). A scene's building passes the
#   head's limit by 0.2-2 on validation (same run), garment photos leaving over 8 % unexplained by 5.4 or more.
BUSY_UNEXPLAINED_WEAK = 0.08
BUSY_OUTLIER_MARGIN = 3.0
HINTS = {
    "cut off": "Part of the item seems to be outside the picture: it runs along the picture's edge, and what "
    "is cut off is not seen, so the answer may be wrong. A photo with the whole garment in it, a "
    "margin all round, reads better."
}


def cut_ratio(pre: Preprocessed) -> float:
    """How long the item's cut by the picture's edge is against the item's size: its longest reach along one side
    over the square root of the share of the picture it covers. A round thing cut through its middle reaches
    sqrt(8 / pi) = 1.6, less where less of it is outside. 0 for an item that does not run off an edge, or that
    touches all four sides."""
    if not pre.found_item or pre.touches_all_sides or pre.fill <= 0:
        return 0.0
    return max(pre.edge_reach) / pre.fill**0.5


def picture_hints(pre: Preprocessed, cut_reach: float = CUT_REACH) -> list[str]:
    """Hints about how the picture was taken, which say nothing about whether it shows a garment (HINTS).
    cut_reach: the limit of the "cut off" hint (lab.cut_hint tries others)."""
    cut = pre.found_item and not pre.touches_all_sides and max(pre.edge_reach) > cut_reach
    return ["cut off"] if cut else []


def picture_rules(pre: Preprocessed) -> list[str]:
    """The notice rules that need no model: what the segmentation found."""
    if not pre.found_item:
        return ["no item"]
    rules = []
    if pre.touches_all_sides and pre.fill > FRAME_FILL:
        rules.append("fills the frame")
    if pre.aspect > MAX_ASPECT:
        rules.append("shape")
    if pre.clutter > BUSY_CLUTTER or (pre.unexplained > BUSY_UNEXPLAINED and not pre.textured):
        rules.append("busy picture")
    at_edge = max(pre.edge_reach) > CUT_REACH and not pre.touches_all_sides
    if at_edge and (pre.fill < EDGE_FILL or (pre.fill < SMALL_CUT_FILL and cut_ratio(pre) > SMALL_CUT_RATIO)):
        rules.append("small, at the edge")
    if cut_ratio(pre) > CUT_OUT:
        rules.append("mostly outside the picture")
    top, bottom, left, right = pre.edge_reach
    if min(top, bottom) > ACROSS_REACH or min(left, right) > ACROSS_REACH:
        rules.append("across the picture")
    if pre.items > 1:
        rules.append("several items")
    return rules


def busy_around(pre: Preprocessed) -> bool:
    """Whether the rest of the picture is not a plain surface, though not busy enough for the `busy picture`
    rule: there, what was found must look more clearly like a garment (BUSY_OUTLIER_MARGIN)."""
    return pre.found_item and pre.unexplained > BUSY_UNEXPLAINED_WEAK and not pre.textured
