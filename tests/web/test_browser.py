"""The page in a real headless Chromium: upload, type classes, run, read the result; a bad file; again."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmseg.web.samples import samples_dir
from tests.web.browser import CHROMIUM, NO_CHROMIUM, artefacts_dir, launch_chromium

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=NO_CHROMIUM)

STREET = samples_dir() / "ade_val_00000003_street.jpg"
TIMEOUT_MS = 60_000


def legend_names(page) -> list[str]:
    return page.locator("#legend .lmseg-class-name").all_inner_texts()


def table_rows(page) -> list[tuple[str, float]]:
    """(class, pixel share in %) of each row of the class table, top to bottom."""
    cells = page.eval_on_selector_all(
        "#class-table div[role=row]",
        "rows => rows.map(r => Array.from(r.querySelectorAll('[role=gridcell]')).map(c => c.innerText.trim()))",
    )
    return [(row[0], float(row[1])) for row in cells]


def check_legend_and_table(page, typed: list[str]) -> None:
    """The table lists every typed class, largest share first; the legend the classes present, in that order;
    the heat map shows the first of them."""
    rows = table_rows(page)
    assert sorted(name for name, _ in rows) == sorted(typed)
    assert [share for _, share in rows] == sorted((share for _, share in rows), reverse=True)
    assert legend_names(page) == [name for name, share in rows if share > 0]
    assert page.locator("#heat-class input").input_value() == rows[0][0]  # the heat map of the largest class


def watch_status(page) -> None:
    """Record every text the status line shows from now on (in ``window.lmsegStatuses``)."""
    page.evaluate("""() => {
        window.lmsegStatuses = [];
        const status = document.querySelector('#status');
        new MutationObserver(() => window.lmsegStatuses.push(status.innerText.trim()))
            .observe(status, {subtree: true, childList: true, characterData: true});
    }""")


def run_and_wait(page, count: int) -> None:
    """Click Run and wait for the status line of a result with ``count`` classes."""
    page.locator("#run").click()
    page.locator("#status").get_by_text(f"{count} classes in").wait_for(timeout=TIMEOUT_MS)


def upload(page, path: Path) -> None:
    clear = page.locator("#image-upload button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#image-upload input[type=file]").set_input_files(str(path))


def test_segment_in_the_browser(demo_server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    artefacts = artefacts_dir()
    with sync_playwright() as playwright:
        context = launch_chromium(playwright, tmp_path / "profile")
        try:
            page = context.new_page()
            page.goto(demo_server, timeout=TIMEOUT_MS)
            page.get_by_text("demo weights: the output is not meaningful").wait_for(timeout=TIMEOUT_MS)

            # 1. a real photograph, typed classes (one with a synonym, two on lines of their own)
            upload(page, STREET)
            page.locator("#status").get_by_text("400x300 pixels, ready").wait_for(timeout=TIMEOUT_MS)
            page.locator("#classes textarea").fill("road, sky;heaven\nbuilding\ncar")
            run_and_wait(page, 4)
            overlay = page.locator("#overlay img")
            overlay.wait_for(timeout=TIMEOUT_MS)
            assert overlay.evaluate("img => img.complete && img.naturalWidth") == 400
            check_legend_and_table(page, ["road", "sky", "building", "car"])
            for name in ("segmentation_label.png", "segmentation_overlay.png"):
                page.locator(f"#downloads a[download='{name}']").wait_for(timeout=TIMEOUT_MS)
            page.locator("#heat img").wait_for(timeout=TIMEOUT_MS)
            shot = artefacts / "web_page_result.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")

            # 2. a file that is not an image: a clear message, and Run says the same
            bad = tmp_path / "holiday.jpg"
            bad.write_text("these are notes, not a photograph")
            upload(page, bad)
            message = "error: the file 'holiday.jpg' is not an image this page can read"
            page.locator("#status").get_by_text(message).wait_for(timeout=TIMEOUT_MS)
            page.locator("#run").click()
            page.locator("#status").get_by_text(message).wait_for(timeout=TIMEOUT_MS)
            shot = artefacts / "web_page_error.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")

            # 3. the server still serves: a bundled sample, clicked, with its own classes
            page.locator("#samples button").first.click()  # "two cats": image and classes filled in
            page.locator("#status").get_by_text("640x480 pixels, ready").wait_for(timeout=TIMEOUT_MS)
            assert page.locator("#classes textarea").input_value() == "cat, remote control, blanket;sofa"
            run_and_wait(page, 3)
            check_legend_and_table(page, ["cat", "remote control", "blanket"])

            # 4. an error from Run is gone as soon as the next request starts
            page.locator("#classes textarea").fill("")
            page.locator("#run").click()
            page.locator("#status").get_by_text("error: type at least one class").wait_for(timeout=TIMEOUT_MS)
            page.locator("#classes textarea").fill("cat, sofa")
            watch_status(page)
            run_and_wait(page, 2)
            seen = [text for text in page.evaluate("() => window.lmsegStatuses") if text]
            assert any("segmenting ..." in text for text in seen) and not any("error" in text for text in seen), seen
        finally:
            context.close()
