"""docs/explain_panel.jpg: the heat map panel before and after each model showed its most faithful method, on
three test items and one rendered photo: Grad-CAM (what every model showed before) beside the shown map.

    python -m scripts.explain_figure
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from fmnist.checkpoints import store
from fmnist.explain.gradcam import overlay
from fmnist.explain.maps import NAMES, explain, method_for
from fmnist.photo import preprocess

ROOT = Path(__file__).resolve().parents[1]
SIDE, PAD, HEAD = 112, 6, 34


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "explain_panel.jpg"))
    args = parser.parse_args()
    pictures = [ROOT / "examples" / n for n in ("0_t-shirt-top_test19.png", "4_coat_test6.png", "7_sneaker_test9.png")]
    pictures.append(next((ROOT / "examples" / "photos").glob("rendered_pattern*.jpg")))
    inputs = [preprocess(p).pixels for p in pictures]
    x = torch.from_numpy(np.stack(inputs)).float().div(255)[:, None]
    folders = store.model_folders(ROOT / "checkpoints")
    font = ImageFont.load_default(size=12)
    width = len(folders) * (2 * SIDE + PAD) + PAD
    sheet = Image.new("RGB", (width, HEAD + len(inputs) * (SIDE + PAD)), "white")
    draw = ImageDraw.Draw(sheet)
    for k, folder in enumerate(folders):
        model, _ = store.load_folder(folder)
        left = PAD + k * (2 * SIDE + PAD)
        draw.text((left, 2), folder.name, fill="black", font=font)
        draw.text((left, 17), f"Grad-CAM | {NAMES[method_for(model)]}", fill="black", font=font)
        for j, maps in enumerate((explain(model, x, method="gradcam"), explain(model, x))):
            for i, (item, cam) in enumerate(zip(inputs, maps)):
                sheet.paste(overlay(item, cam, size=SIDE), (left + j * SIDE, HEAD + i * (SIDE + PAD)))
    out = Path(args.out)
    if str(out).lower().endswith((".jpg", ".jpeg")):
        sheet.convert("RGB").save(out, quality=82, optimize=True, progressive=True)
    else:
        sheet.quantize(256).save(out, optimize=True)  # a palette: a third of the size, no visible change
    print(out)


if __name__ == "__main__":
    main()
