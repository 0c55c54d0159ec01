"""The app's answer as people and programs get it: one classify request's round trip on the running app
(python app.py on loopback), two ways:
- Chromium (Debian's, headless, through Playwright): from the click on Classify until the answer's picture is
  shown (what was found, what the model saw, the heat map and the similar items, one new file, loaded; the top-3
  arrives in the same message);
- gradio_client: from the call until it returns, every output file downloaded.
Each for a data-set image (28x28 PNG) and a phone photo (a 12 MP JPEG of a rendered item), medians and p90 over
--runs after two warm-up requests. The app runs alone on this machine's cores; nothing else should run beside it.

    python -m benchmarks.roundtrip [--runs 15] [--app-dir /other/checkout] [--out roundtrip]

--app-dir runs another checkout's app.py with this Python (a before/after comparison on the same machine).
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks._common import ROOT, record
from fmnist.evaluation.reports import format_table
from fmnist.photo.render import render_photo
from fmnist.serving.server import running_app
from scripts.screenshot import CHROMIUM, FLAGS

# the answer's picture; with --app-dir, an older app's four (found, model input, Grad-CAM, similar items)
IMAGES = ("#answer img", "#found img", "#model-input img", "#gradcam img", "#similar img")


def pictures(folder: Path) -> dict[str, Path]:
    example = sorted((ROOT / "examples").glob("*.png"))[0]
    phone = folder / "phone-12mp.jpg"
    item = np.asarray(Image.open(sorted((ROOT / "examples").glob("*.png"))[3]).convert("L"))  # a dress
    render_photo(item, "everyday", np.random.default_rng(0), megapixels=12)[0].save(phone, quality=90)
    return {"data-set image (28x28 PNG)": example, "phone photo (12 MP JPEG)": phone}


def through_client(url: str, picture: Path, runs: int) -> list[float]:
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    times = []
    for k in range(runs + 2):
        t0 = time.perf_counter()
        client.predict(handle_file(str(picture)), "resnet", api_name="/classify")
        if k >= 2:  # two warm-up requests
            times.append(1000 * (time.perf_counter() - t0))
    return times


def through_browser(url: str, picture: Path, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url, wait_until="networkidle")
            images = [q for q in IMAGES if page.locator(q.split()[0]).count()]  # the app's own output images
            for k in range(runs + 2):
                page.locator("input[type=file]").first.set_input_files(str(picture))
                page.wait_for_function("() => document.querySelector('#garment img') !== null")
                # the answer's images carry the request's unique file names: wait for new ones, all loaded
                before = page.evaluate("(s) => s.map(q => document.querySelector(q)?.src || '')", images)
                t0 = time.perf_counter()
                page.get_by_role("button", name="Classify").click()
                page.wait_for_function(
                    "([s, before]) => s.every((q, i) => { const imgs = [...document.querySelectorAll(q)];"
                    " return imgs.length > 0 && imgs[0].src !== before[i]"
                    " && imgs.every(img => img.complete && img.naturalWidth > 0); })",
                    arg=[images, before],
                    timeout=60_000,
                    polling="raf",
                )
                if k >= 2:
                    times.append(1000 * (time.perf_counter() - t0))
        finally:
            browser.close()
    return times


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--app-dir", default=None, help="run this checkout's app.py instead of this one's")
    p.add_argument("--out", default="roundtrip")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, running_app(Path(tmp) / "app.log", app_dir=args.app_dir) as url:
        for what, picture in pictures(Path(tmp)).items():
            for way, measure in (("gradio_client", through_client), ("Chromium", through_browser)):
                times = measure(url, picture, args.runs)
                rows.append(
                    {
                        "picture": what,
                        "way": way,
                        "p50_ms": statistics.median(times),
                        "p90_ms": float(np.percentile(times, 90)),
                        "runs": len(times),
                    }
                )
                print(rows[-1], flush=True)
    path = record(args.out, rows, torch.device("cpu"), {"app_dir": args.app_dir or "."})
    print(
        format_table(
            rows,
            [
                ("picture", "picture", ""),
                ("way", "way", ""),
                ("p50_ms", "p50 ms", ".0f"),
                ("p90_ms", "p90 ms", ".0f"),
                ("runs", "runs", "d"),
            ],
        )
    )
    print(f"({path})")


if __name__ == "__main__":
    main()
