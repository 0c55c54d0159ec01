"""A real headless Chromium (Debian's) uploads an example, clicks Classify, and sees three labels and
the answer's picture (Grad-CAM and the rest). The screenshot is kept in artifacts/ for people to look at."""

from pathlib import Path

import pytest

from conftest import ROOT
from fmnist.serving.answer import WIDTH
from fmnist.serving.server import running_app
from scripts.screenshot import CHROMIUM, FLAGS

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
    pytest.mark.skipif(not any((ROOT / "checkpoints").glob("*/model.safetensors")), reason="no bundled checkpoints"),
]


def test_upload_classify_and_see_the_overlay(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    example = sorted((ROOT / "examples").glob("9_*.png"))[0]  # an ankle boot
    shot = ROOT / "artifacts" / "app_screenshot.png"
    shot.parent.mkdir(exist_ok=True)
    with running_app(tmp_path / "app.log") as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url, wait_until="networkidle")
            page.locator("input[type=file]").first.set_input_files(str(example))
            page.get_by_role("button", name="Classify").click()
            top3 = page.locator("#top3")
            expect(top3.get_by_role("heading")).to_have_text("Ankle boot", timeout=60_000)
            expect(top3.get_by_role("meter")).to_have_count(3, timeout=30_000)
            answer = page.locator("#answer img")  # what was found, what the model saw, Grad-CAM, similar items
            expect(answer).to_be_visible(timeout=30_000)
            page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=answer.element_handle())
            assert page.evaluate("(img) => img.naturalWidth", answer.element_handle()) == WIDTH
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
