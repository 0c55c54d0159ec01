"""A figure for the README: test items drawn by every photo renderer, each with what the default model saw
(the 28x28 from the app's pipeline) and its answer, right (green) and wrong (red) alike.

    python -m lab.photo_grid [--per-cell 4] [--seed 0] [--out docs/photo_grid.jpg]
    python -m lab.photo_grid --levels pale --per-cell 6 --out lab/figures/photo_grid_pale.jpg
    python -m lab.photo_grid --misses --levels pale --renderers opaque,pattern --out lab/figures/pale_misses.jpg
    python -m lab.photo_grid --flagged --levels pale --renderers opaque,scenes --out lab/figures/pale_flagged.jpg

The items are the first of a seeded stratified draw of test items, the same for every renderer, so the grid
shows the pipeline as it is, not picked examples. Below every level, the everyday level of scenes, tint and
opaque once more with the items turned by up to 30 degrees, and once with a print inside their silhouette
(fmnist.training.prints, the generator the photo data uses; --no-extra leaves these rows out).

With --misses, each cell shows the first pictures of the photo benchmark's own (300 test items a cell, the same
seed) that the default model misreads although it reads the same item right as a 28x28 image: what a gap is
made of. With --flagged, the first of those pictures that get a notice although they show a garment.
"""

import argparse

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from fmnist import CLASS_NAMES
from fmnist.data import load_raw, stratified_split
from fmnist.photo.render import RENDERERS, render_item
from fmnist.serving.predict import Predictor
from fmnist.training.prints import print_item
from lab._common import ROOT

TILE = 150


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-cell", type=int, default=4, help="pictures per renderer and level")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoints", default=str(ROOT / "checkpoints"))
    p.add_argument("--out", default=str(ROOT / "docs" / "photo_grid.jpg"))
    p.add_argument("--levels", default=None, help="only these levels, comma-separated (default: every level)")
    p.add_argument("--no-extra", action="store_true", help="without the turned and printed rows")
    p.add_argument("--renderers", default=",".join(RENDERERS), help="only these renderers, comma-separated")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--misses",
        action="store_true",
        help="only the benchmark's pictures the model misreads while it reads their 28x28 right",
    )
    which.add_argument(
        "--flagged", action="store_true", help="only the benchmark's pictures that get a notice (each shows a garment)"
    )
    args = p.parse_args()
    wanted = None if args.levels is None else set(args.levels.split(","))
    predictor = Predictor.from_source(args.checkpoints)
    raw = load_raw(allow_download=False)
    picked = args.misses or args.flagged  # the benchmark's own pictures, some of them, not a spread
    items = stratified_split(raw.test_labels, 300 if picked else 100, args.seed)[1]
    cells = [
        (r, lv, "")
        for r, (_, levels) in RENDERERS.items()
        for lv in levels
        if (wanted is None or lv in wanted) and r in args.renderers.split(",")
    ]
    if not (args.no_extra or picked):
        cells += [(r, "everyday", variant) for variant in ("turned", "printed") for r in ("scenes", "tint", "opaque")]
    font = ImageFont.load_default(size=13)
    label_w = 120
    grid = Image.new("RGB", (label_w + args.per_cell * 2 * TILE, len(cells) * (TILE + 34)), "white")
    draw = ImageDraw.Draw(grid)
    for row, (renderer, level, variant) in enumerate(cells):
        y = row * (TILE + 34)
        draw.text((6, y + TILE // 2 - 10), f"{renderer}\n{level}\n{variant}", fill="black", font=font)
        shown_items = (
            first(predictor, raw, items, renderer, level, args)
            if picked
            else [int(items[(row * 7 + k * 13) % len(items)]) for k in range(args.per_cell)]
        )
        for k, i in enumerate(shown_items):
            item = raw.test_images[i]
            if variant == "printed":
                item = print_item(item, np.random.default_rng([args.seed, 71, i]))
            picture = render_item(renderer, level, item, args.seed, i, tilt_deg=30.0 if variant == "turned" else 0.0)
            pred = predictor.predict(picture)
            shown = ImageOps.exif_transpose(picture).convert("RGB")
            shown.thumbnail((TILE, TILE))
            x = label_w + k * 2 * TILE
            grid.paste(shown, (x + (TILE - shown.width) // 2, y + (TILE - shown.height) // 2))
            grid.paste(
                pred.model_input.resize((TILE - 10, TILE - 10), Image.Resampling.NEAREST).convert("RGB"),
                (x + TILE + 5, y + 5),
            )
            truth, answer = CLASS_NAMES[int(raw.test_labels[i])], pred.top3[0][0]
            colour = (0, 130, 0) if truth == answer else (200, 0, 0)
            note = " (notice)" if pred.rules else ""
            draw.text((x + 4, y + TILE + 2), f"{truth}", fill="black", font=font)
            draw.text((x + TILE + 4, y + TILE + 2), f"{answer} {pred.top3[0][1]:.0%}{note}", fill=colour, font=font)
    # at 80 %, progressive: the figure is tracked, so it is kept near 300 kB
    grid = grid.resize((grid.width * 4 // 5, grid.height * 4 // 5), Image.Resampling.LANCZOS)
    grid.save(args.out, quality=80, optimize=True, progressive=True)
    print(f"wrote {args.out}")


def first(predictor: Predictor, raw, items, renderer: str, level: str, args) -> list[int]:
    """The first args.per_cell of the benchmark's items (in its order) whose picture the model misreads while it
    reads the item right as a 28x28 image (--misses), or whose picture gets a notice (--flagged)."""
    found = []
    for i in map(int, items):
        photo = render_item(renderer, level, raw.test_images[i], args.seed, i)
        if args.flagged:
            keep = bool(predictor.predict(photo).rules)
        else:
            truth = CLASS_NAMES[int(raw.test_labels[i])]
            keep = (
                predictor.predict(Image.fromarray(raw.test_images[i])).top3[0][0] == truth
                and predictor.predict(photo).top3[0][0] != truth
            )
        if keep:
            found.append(i)
        if len(found) == args.per_cell:
            break
    return found


if __name__ == "__main__":
    main()
