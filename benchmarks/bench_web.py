"""The web page's overhead: time from clicking Run to the new overlay, against predict() alone.

    .venv/bin/python -m benchmarks.bench_web                       # lmseg_tiny, the street sample
    .venv/bin/python -m benchmarks.bench_web --model trident_tiny --repeats 5

Three timings of the same request (same image, same classes, after one warm-up that fills the
text-embedding cache), median of ``--repeats`` runs each, all in this one process and run:

* ``predict``: ``segmenter.predict(image, vocabulary, return_scores=True)`` on the decoded image,
  the baseline;
* ``handler``: :meth:`SegmentService.segment` (decode the upload with its checks, predict, write
  the label and overlay PNGs, draw the page's overlay, table and heat maps), no web server;
* ``page``: in headless Chromium (Debian's /usr/bin/chromium through Playwright), from the click
  on Run until the new overlay image has loaded in the page.

The page's overhead is ``page - predict`` (and the ratio ``page / predict``); ``handler -
predict`` is the part of it that is lmseg's own work rather than Gradio's and the browser's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from lmseg.web.samples import samples_dir

OVERLAY_CHANGED = """old => { const img = document.querySelector('#overlay img');
  return img && img.src !== old && img.complete && img.naturalWidth > 0; }"""


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


class _Page:
    """The page in headless Chromium with the image uploaded. Runs alternate between the class
    list and its reverse, so that every run yields a new overlay (an identical one keeps its URL)."""

    def __init__(self, playwright, profile: Path, url: str, image: Path, classes: str) -> None:
        from tests.web.browser import launch_chromium

        self.orders = [classes, ", ".join(reversed([c.strip() for c in classes.split(",")]))]
        self.runs = 0
        self.context = launch_chromium(playwright, profile)
        self.page = self.context.new_page()
        self.page.goto(url)
        self.page.locator("#image-upload input[type=file]").set_input_files(str(image))
        self.page.locator("#status").get_by_text("ready").wait_for()

    def run(self) -> float:
        """Seconds from the click on Run until the new overlay has loaded."""
        page = self.page
        page.locator("#classes textarea").fill(self.orders[self.runs % 2])
        self.runs += 1
        old = page.evaluate("() => document.querySelector('#overlay img')?.src ?? ''")
        started = time.perf_counter()
        page.locator("#run").click()
        page.wait_for_function(OVERLAY_CHANGED, arg=old, timeout=120_000)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lmseg_tiny")
    parser.add_argument("--image", type=Path, default=samples_dir() / "ade_val_00000003_street.jpg")
    parser.add_argument("--classes", default="road, sky, building, car, tree, sidewalk")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from lmseg.inference import as_rgb_array
    from lmseg.registry import create_segmenter
    from lmseg.vocab import parse_class_list
    from lmseg.web.app import build_app, launch
    from lmseg.web.service import SegmentService
    from tests.web.conftest import free_port

    segmenter = create_segmenter(args.model)
    service = SegmentService(segmenter, args.model, demo_weights=True)
    rgb, vocab = as_rgb_array(args.image), parse_class_list(args.classes)
    port = free_port()
    app = build_app(service)
    launch(app, service, host="127.0.0.1", port=port, block=False)
    times: dict[str, list[float]] = {"predict": [], "handler": [], "page": []}
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
            page = _Page(playwright, Path(profile), f"http://127.0.0.1:{port}", args.image, args.classes)
            page.run(), page.run()  # warm-up: both class orders encoded and cached
            for _ in range(args.repeats):  # interleaved, so that all three see the same machine load
                times["predict"].append(_timed(lambda: segmenter.predict(rgb, vocab, return_scores=True)))
                times["handler"].append(_timed(lambda: service.segment(args.image, args.classes)))
                times["page"].append(page.run())
            page.context.close()
    finally:
        app.close()
        service.close()
    medians = {name: statistics.median(values) for name, values in times.items()}
    height, width = rgb.shape[:2]
    print(f"# {args.model}, {args.image.name} ({width}x{height}), {len(vocab)} classes, median of {args.repeats}")
    print(f"{'path':<10}{'seconds':>10}{'x predict':>12}")
    for name, seconds in medians.items():
        print(f"{name:<10}{seconds:>10.3f}{seconds / medians['predict']:>12.2f}")
    print(f"page overhead: {1000 * (medians['page'] - medians['predict']):.0f} ms per request "
          f"({1000 * (medians['handler'] - medians['predict']):.0f} ms of it in lmseg's handler)")


if __name__ == "__main__":
    main()
