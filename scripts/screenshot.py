"""Screenshot a local web page with Debian's headless Chromium (through Playwright), for the README.

    python scripts/screenshot.py URL OUT.png [--wait-s 8] [--width 1400] [--height 1000]
    python scripts/screenshot.py --trackio PROJECT OUT.png     # starts `trackio show --project PROJECT` first
    python -m scripts.screenshot --app PICTURE docs/app.jpg    # the app answering PICTURE (the README's picture)
    python -m scripts.screenshot --batch FOLDER docs/batch.jpg --labels Coat,skip   # the batch tab, labels typed

With --trackio, the dashboard is started on a free loopback port (TRACKIO_DIR as in the environment),
shot once its plots have drawn, and stopped.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


def shoot(url: str, out: str, wait_s: float, width: int, height: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(url, wait_until="networkidle", timeout=120_000)
        page.wait_for_timeout(wait_s * 1000)
        page.screenshot(path=out, full_page=False)
        browser.close()


@contextmanager
def app_page(width: int, height: int):
    """The real app started on a free port, and a headless Chromium page open on it; both stopped after."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from fmnist.serving.server import running_app

    with (
        tempfile.TemporaryDirectory() as tmp,
        running_app(os.path.join(tmp, "app.log")) as url,
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(url, wait_until="networkidle")
            yield page
        finally:
            browser.close()


def shoot_app(picture: str, out: str, width: int, height: int) -> None:
    """Start the app, upload picture, click Classify, and shoot the page once the answer and its images show."""
    from playwright.sync_api import expect

    with app_page(width, height) as page:
        page.locator("input[type=file]").first.set_input_files(picture)
        page.get_by_role("button", name="Classify").click()
        expect(page.locator("#top3").get_by_role("meter")).to_have_count(3, timeout=60_000)
        for img in page.locator("#answer img").element_handles():
            page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=img)
        page.wait_for_timeout(1000)
        page.screenshot(path=out, full_page=False)


def shoot_batch(folder: str, out: str, labels: list[str], width: int, height: int) -> None:
    """Start the app, tag the pictures of folder in the batch tab, type labels into the first rows' label cells,
    check them ("Download the corrected CSV"), and shoot the tab."""
    from pathlib import Path

    from playwright.sync_api import expect

    pictures = sorted(str(p) for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    with app_page(width, height) as page:
        page.get_by_role("tab", name="Tag a batch").click()
        page.locator("#batch-files input[type=file]").set_input_files(pictures)
        page.wait_for_timeout(1500)
        page.get_by_role("button", name="Tag all").click()
        rows = page.locator("#batch-table div[role=row].virtual-row")  # Gradio 6's grid: one div per row
        expect(rows).to_have_count(len(pictures), timeout=120_000)
        last = 9  # the label column
        for k, label in enumerate(labels):
            cell = page.locator(f'#batch-table [data-testid="cell-{k}-{last}"]')
            cell.dblclick()
            page.keyboard.type(label)
            page.keyboard.press("Enter")
            page.wait_for_timeout(300)
        page.get_by_role("button", name="Download the corrected CSV").click()
        expect(page.locator("#batch-checked")).to_contain_text("labelled", timeout=60_000)
        page.wait_for_timeout(1000)
        # from the batch's summary to the check's: the table with its labels, the thumbnails, the buttons
        where = "(el) => { const r = el.getBoundingClientRect(); return [r.top + scrollY, r.bottom + scrollY]; }"
        top, _ = page.locator("#batch-summary").evaluate(where)  # page coordinates, as full_page's clip takes
        _, bottom = page.locator("#batch-checked").evaluate(where)
        clip = {"x": 0, "y": top, "width": width, "height": bottom - top + 8}
        jpeg = {"type": "jpeg", "quality": 72} if out.lower().endswith((".jpg", ".jpeg")) else {}
        page.screenshot(path=out, full_page=True, clip=clip, **jpeg)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", help="a URL, or with --trackio the project name")
    p.add_argument("out")
    p.add_argument("--trackio", action="store_true")
    p.add_argument("--app", action="store_true", help="target is a picture to upload to the app")
    p.add_argument("--batch", action="store_true", help="target is a folder of pictures to tag in the batch tab")
    p.add_argument("--labels", default="", help="with --batch: labels typed into the first rows, comma-separated")
    p.add_argument("--wait-s", type=float, default=8)
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=1000)
    args = p.parse_args()
    if args.batch:
        labels = [s for s in args.labels.split(",") if s]
        shoot_batch(args.target, args.out, labels, args.width, args.height)
        print(f"wrote {args.out}")
        return 0
    if args.app:
        shoot_app(args.target, args.out, args.width, args.height)
        print(f"wrote {args.out}")
        return 0
    if not args.trackio:
        shoot(args.target, args.out, args.wait_s, args.width, args.height)
        return 0
    trackio = os.path.join(os.path.dirname(sys.executable), "trackio")
    proc = subprocess.Popen(
        [trackio, "show", "--project", args.target],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"},
    )
    try:
        url, deadline = None, time.time() + 120
        while url is None and time.time() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise SystemExit(f"trackio show exited with {proc.returncode}")
            found = re.search(r"(http://(?:127\.0\.0\.1|localhost):\d+/\S*)", line)
            url = found.group(1) if found else None
        if url is None:
            raise SystemExit("trackio show printed no local URL within 120 s")
        shoot(url, args.out, args.wait_s, args.width, args.height)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
