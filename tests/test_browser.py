"""A real browser (Debian's Chromium, driven by Playwright) opens the dashboard, classifies a
review in the classification tab and reads the predicted label from the page; in the text-generation
tab it writes a continuation and reads the text and the next-piece candidates."""
from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest


CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def dashboard_url(ci_build):
    from apps.common import ModelStore
    from apps.dashboard import make_demo

    demo = make_demo(ModelStore(ci_build))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, share=False, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_classify_a_review_in_the_browser(dashboard_url, ci_build, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(dashboard_url, wait_until="domcontentloaded")
            page.locator("#classify-text textarea").fill("The phone is excellent. I would recommend it to anyone.")
            page.locator("#classify-button").click()
            predicted = page.locator('#classify-label [data-testid="label-output-value"]')
            sync_api.expect(predicted).to_have_text(re.compile(r"\S"), timeout=60_000)  # filled in by the reply
            label = predicted.inner_text().strip()
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    model_labels = json.loads((ci_build / "sentiment" / "config.json").read_text())["id2label"].values()
    assert label in model_labels, f"the page shows {label!r}, not one of {sorted(model_labels)}"
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000


def test_generate_text_in_the_browser(dashboard_url):
    sync_api = pytest.importorskip("playwright.sync_api")
    prompt = "chen wei works at"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(dashboard_url, wait_until="domcontentloaded")
            page.get_by_role("tab", name="Text generation").click()
            page.locator("#generate-prompt textarea").fill(prompt)
            page.locator("#generate-button").click()
            summary = page.locator("#generate-summary")
            sync_api.expect(summary).to_contain_text("new word pieces", timeout=60_000)  # the final update
            text = page.locator("#generate-output textarea").input_value()
            top = page.locator('#generate-candidates [data-testid="label-output-value"]').inner_text().strip()
        finally:
            browser.close()
    assert text.startswith(prompt) and len(text) > len(prompt), text
    assert top, "no next-piece candidates on the page"
