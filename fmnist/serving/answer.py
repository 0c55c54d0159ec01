"""A prediction's pictures as one image, the app's answer: what was found, what the model saw and where it
looked side by side, and the most similar training items beneath, each captioned.

One file instead of four: every output file is written, copied into Gradio's cache and fetched by the browser
or gradio_client (which opens a new connection for each: docs/benchmarks.md), and that, not the model, was most of an
answer's time (docs/app.md, benchmarks/results/roundtrip-*.json).
"""

from __future__ import annotations

from PIL import Image, ImageDraw, ImageFont

PANEL = 224  # px: the 28x28 input at 8x, and the heat map overlay (fmnist.serving.predict draws it at this size)
GAP = 14  # between the three panels
TILE = 84  # px: a similar item at 3x
TILE_GAP = 4  # between the eight tiles: 8 * 84 + 7 * 4 = 3 * 224 + 2 * 14 = 700
TITLE = 22  # px of title above the similar items
HEAD = 36  # px of title above the three panels: two lines, the map's method and its faithfulness beneath
CAPTION = 32  # px of two caption lines under each tile
WIDTH = 3 * PANEL + 2 * GAP
PANEL_TITLES = ("What was found", "What the model saw (28x28)", "Where it looked: Grad-CAM")
SIMILAR_TITLE = "The most similar training items (class, cosine similarity), nearest first"
BACKGROUND, INK = (255, 255, 255), (30, 30, 30)


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _fit(image: Image.Image, side: int) -> Image.Image:
    """image scaled to fit a side x side square, centred on white (a 28x28 upload is scaled up crisply)."""
    image = image.convert("RGB")
    scale = side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    small = max(image.size) <= 64
    image = image.resize(size, Image.Resampling.NEAREST if small else Image.Resampling.BILINEAR)
    square = Image.new("RGB", (side, side), BACKGROUND)
    square.paste(image, ((side - size[0]) // 2, (side - size[1]) // 2))
    return square


def panel_box(k: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of panel k (0 found, 1 model input, 2 the heat map) in the sheet."""
    return k * (PANEL + GAP), HEAD, k * (PANEL + GAP) + PANEL, HEAD + PANEL


def tile_box(k: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of similar item k (0 the nearest) in the sheet."""
    top = HEAD + PANEL + TITLE
    return k * (TILE + TILE_GAP), top, k * (TILE + TILE_GAP) + TILE, top + TILE


def answer_sheet(
    found: Image.Image | None,
    model_input: Image.Image,
    overlay: Image.Image,
    similar: list[tuple[Image.Image, str, float]],
    map_title: str = PANEL_TITLES[2],
    map_note: str = "",
) -> Image.Image:
    """The answer as one RGB picture, WIDTH px wide: three panels (found, model input, the heat map) under their
    titles (the map's with a second line, map_note: its faithfulness), then up to eight similar items in one row,
    each with its class and similarity beneath."""
    title_font, caption_font = _font(14), _font(12)
    height = HEAD + PANEL + ((TITLE + TILE + CAPTION) if similar else 0)
    sheet = Image.new("RGB", (WIDTH, height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    panels = (found if found is not None else model_input, model_input, overlay)
    for k, (title, image) in enumerate(zip((*PANEL_TITLES[:2], map_title), panels)):
        left, top, _, _ = panel_box(k)
        draw.text((left, 3), title, fill=INK, font=title_font)
        sheet.paste(_fit(image, PANEL), (left, top))
    if map_note:
        draw.text((panel_box(2)[0], 20), map_note, fill=INK, font=caption_font)
    if similar:
        y = HEAD + PANEL
        draw.text((0, y + 5), SIMILAR_TITLE, fill=INK, font=title_font)
        for k, (image, name, sim) in enumerate(similar[:8]):
            x, top, _, bottom = tile_box(k)
            sheet.paste(image.convert("RGB").resize((TILE, TILE), Image.Resampling.NEAREST), (x, top))
            draw.text((x + 1, bottom + 2), name, fill=INK, font=caption_font)
            draw.text((x + 1, bottom + 16), f"{sim:.2f}", fill=INK, font=caption_font)
    return sheet
