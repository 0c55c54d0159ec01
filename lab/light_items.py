"""Are garments lighter than their backdrop read worse, and would the data set's own convention read them better?

    python -m lab.light_items [--per-cell 100] [--models resnet,deep_cnn,basic_cnn] [--out light-items-val]
    python -m lab.light_items --figure lab/figures/light_items.jpg    # 28x28s by the two rules, side by side

The pipeline gives a garment lighter than its backdrop (a pale shirt on a grey table, a white one on a dark floor)
its lightness *above the backdrop* (until 2026-12-07; `above` keeps that rule): the body bright,
its darker seams and print dimmer. The data set made its images by negating shop photos on white, so a light
garment there is its darkness *against white*: a dim body with brighter seams, folds and print. Here each
validation picture (every renderer and level) goes through the pipeline as it is and, where the item is lighter
than its backdrop, once more with its intensity taken as 1 - grey (the darkness against white; the colour floor as
before), the rest of the pipeline unchanged. Each model reads both; `deep_cnn` and `basic_cnn` never trained on the
pipeline's photos, so they judge which convention is the data set's own, and `resnet` (trained with rendered photos
of the pipeline as it is) what a switch costs before any retraining. Each is also read with the switch made only
where the backdrop is light (a pale garment on a white or light-grey surface), not for a light garment on a dark
floor. Results go to lab/results/<out>-cpu.json. Since the switch on light backdrops became the pipeline's own,
the "as it is" reading is `above`, the rule the pipeline had before, so the run still compares the same two rules.
"""

import argparse
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch
from tqdm.auto import tqdm

import fmnist.photo.pipeline as pipeline
from fmnist.checkpoints import store
from fmnist.data import load_splits, stratified_split
from fmnist.photo.intensity import COLOUR_FLOOR, darker_than_backdrop
from fmnist.photo.render import RENDERERS, render_item
from lab._common import ROOT, record

NOW = pipeline.item_intensity  # the pipeline's rule today: the switch on light backdrops
SEEN = {}  # what the last call of the intensity saw, in the worker: whether the item was lighter


def lighter(info: dict, mask) -> bool:
    """The pipeline's own choice of the item's side."""
    return not darker_than_backdrop(info, mask)


def _floor(contrast, info):
    return np.maximum(np.clip(contrast, 0, 1), COLOUR_FLOOR * np.clip(info["d_chroma"] / 1.5, 0, 1))


def above(rgb, info, mask=None):
    """The pipeline's rule until 2026-12-07: a lighter item by its lightness above the backdrop (on a light one,
    its darker print too); a darker one as today."""
    if not lighter(info, mask):
        return NOW(rgb, info, mask)
    grey, back = info["grey"], np.clip(info["backdrop_grey"], 0.0, 1.0)
    contrast = (grey - back) / np.maximum(1.0 - back, 0.1)
    if info["light_backdrop"]:
        contrast = np.maximum(contrast, (back - grey) / np.maximum(back, 0.1))
    return _floor(contrast, info)


def recording(rgb, info, mask=None):
    SEEN["lighter"], SEEN["light_backdrop"] = lighter(info, mask), bool(info["light_backdrop"])
    return above(rgb, info, mask)


def negative(rgb, info, mask=None):
    """A lighter item's darkness against white, as a shop photo of it negated; a darker one as it is."""
    if not lighter(info, mask):
        return NOW(rgb, info, mask)
    return _floor(1.0 - info["grey"], info)


def _job(job):
    return readings(render_item(*job))


def readings(picture):
    """The picture's 28x28 by the old rule, by the switch (None where the item is not lighter than its backdrop),
    and whether the backdrop is light."""
    pipeline.item_intensity = recording
    as_is = pipeline.preprocess(picture).pixels
    if not SEEN["lighter"]:
        return as_is, None, SEEN["light_backdrop"]
    pipeline.item_intensity = negative
    try:
        return as_is, pipeline.preprocess(picture).pixels, SEEN["light_backdrop"]
    finally:
        pipeline.item_intensity = NOW


@torch.inference_mode()
def answers(model, pixels: np.ndarray) -> np.ndarray:
    return model(torch.from_numpy(pixels).float().div(255)[:, None]).argmax(1).numpy()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-cell", type=int, default=100)
    p.add_argument("--models", default="resnet,deep_cnn,basic_cnn")
    p.add_argument("--out", default="light-items-val")
    p.add_argument("--figure", help="draw pale garments on light backdrops by both rules to this picture instead")
    args = p.parse_args()
    if args.figure:
        return figure(args.figure)
    val = load_splits(allow_download=False).val
    images, labels = val.images.numpy(), val.labels.numpy()
    items = stratified_split(labels, args.per_cell, 1)[1]
    cells = [(r, lv) for r, (_, levels) in RENDERERS.items() for lv in levels]
    jobs = [(r, lv, images[i], 1 * 100003 + int(i), n) for r, lv in cells for n, i in enumerate(items)]
    with ProcessPoolExecutor(2) as pool:
        out = list(tqdm(pool.map(_job, jobs, chunksize=4), total=len(jobs), desc="pictures"))
    as_is = np.stack([a for a, _, _ in out])
    is_light = np.array([b is not None for _, b, _ in out])
    on_light = np.array([lb for _, _, lb in out])  # the backdrop is light (a shop's white, a pale table)
    neg = np.stack([b if b is not None else a for a, b, _ in out])
    neg_on_light = np.where((is_light & on_light)[:, None, None], neg, as_is)
    y = np.tile(labels[items], len(cells))
    cell = np.repeat([f"{r}/{lv}" for r, lv in cells], len(items))
    rows = []
    for name in args.models.split(","):
        model = store.load_folder(ROOT / "checkpoints" / name)[0].eval()
        right_as_is, right_neg = answers(model, as_is) == y, answers(model, neg) == y
        right_neg_light = answers(model, neg_on_light) == y
        right_item = np.tile(answers(model, images[items]) == labels[items], len(cells))
        for c in [*dict.fromkeys(cell), "all"]:
            here = np.ones(len(y), bool) if c == "all" else cell == c
            light, dark = here & is_light, here & ~is_light
            pale, dim = light & on_light, light & ~on_light
            rows.append(
                {
                    "model": name,
                    "cell": str(c),
                    "pictures": int(here.sum()),
                    "lighter": int(light.sum()),
                    "lighter_28x28": float(right_item[light].mean()) if light.any() else None,
                    "lighter_as_is": float(right_as_is[light].mean()) if light.any() else None,
                    "lighter_negative": float(right_neg[light].mean()) if light.any() else None,
                    "lighter_on_light": int(pale.sum()),
                    "on_light_as_is": float(right_as_is[pale].mean()) if pale.any() else None,
                    "on_light_negative": float(right_neg[pale].mean()) if pale.any() else None,
                    "on_dark_as_is": float(right_as_is[dim].mean()) if dim.any() else None,
                    "on_dark_negative": float(right_neg[dim].mean()) if dim.any() else None,
                    "darker_28x28": float(right_item[dark].mean()) if dark.any() else None,
                    "darker_as_is": float(right_as_is[dark].mean()) if dark.any() else None,
                    "cell_as_is": float(right_as_is[here].mean()),
                    "cell_negative": float(right_neg[here].mean()),
                    "cell_negative_on_light": float(right_neg_light[here].mean()),
                }
            )
            if c == "all" or light.sum() >= 10:
                print({k: round(v, 3) if isinstance(v, float) else v for k, v in rows[-1].items()}, flush=True)
    print("wrote", record(args.out, rows, torch.device("cpu"), {"per_cell": args.per_cell}))


def figure(path: str, shown: int = 12, tile: int = 112) -> None:
    """Validation pictures of every renderer's pale level where the item is lighter than a light backdrop: the
    photo, its 28x28 by the old rule (lightness above the backdrop) and by today's (darkness against white), and
    the 28x28 item itself."""
    from PIL import Image, ImageDraw, ImageFont

    from fmnist import CLASS_NAMES

    val = load_splits(allow_download=False).val
    images, labels = val.images.numpy(), val.labels.numpy()
    renderers = ("scenes", "tint", "pattern", "opaque")  # each has a pale level; in turn, in this order
    found = []
    for n, i in enumerate(stratified_split(labels, 30, 2)[1]):
        renderer = renderers[n % len(renderers)]
        picture = render_item(renderer, "pale", images[i], 2 * 100003 + int(i), n)
        as_is, negated, on_light = readings(picture)
        if negated is not None and on_light:
            found.append((picture, as_is, negated, i, renderer))
        if len(found) == shown:
            break
    font, cols = ImageFont.load_default(size=13), 2
    heads = ("photo", "before", "now", "data set's 28x28")
    rows = (len(found) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * 4 * tile + (cols - 1) * 16, 20 + rows * (tile + 20)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (photo, old, new, i, renderer) in enumerate(found):
        x0, y = (k % cols) * (4 * tile + 16), 20 + (k // cols) * (tile + 20)
        photo = photo.convert("RGB")
        photo.thumbnail((tile, tile))
        cells = [photo] + [Image.fromarray(a).resize((tile, tile), Image.Resampling.NEAREST) for a in (old, new)]
        cells.append(Image.fromarray(images[i]).resize((tile, tile), Image.Resampling.NEAREST))
        for c, im in enumerate(cells):
            sheet.paste(im.convert("RGB"), (x0 + c * tile + (tile - im.width) // 2, y))
        draw.text((x0 + 2, y + tile + 2), f"{CLASS_NAMES[int(labels[i])]}, {renderer}", fill="black", font=font)
    for col in range(cols):
        for c, head in enumerate(heads):
            draw.text((col * (4 * tile + 16) + c * tile + 2, 3), head, fill="black", font=font)
    sheet.save(path, quality=88)
    print("wrote", path)


if __name__ == "__main__":
    main()
