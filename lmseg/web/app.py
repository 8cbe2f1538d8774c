"""The Gradio page around a :class:`~lmseg.web.service.SegmentService`.

Layout: on the left the input (upload or drop an image, or click a sample; the classes, or a
built-in vocabulary within the page's class limit; an optional attribute table for models
that use one; Run); on the right the result (overlay, legend of the classes present, class
table, a per-class score heat map, downloads). Legend and table list classes in one order,
largest pixel share first. Every error a user can fix appears in the status line above the
result (cleared when a new request starts); the server keeps serving.

Programs call the hidden ``/segment`` endpoint (see :func:`build_app` and docs/web.md):
inputs image file, class text, vocabulary name ("" = the class text); outputs the label PNG,
the overlay PNG and the class table as JSON. Its errors come back as ``gradio.Error``.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from lmseg.errors import LmsegError
from lmseg.web.limits import read_upload
from lmseg.web.render import by_share, heat_map, shrink
from lmseg.web.samples import SAMPLES, samples_dir
from lmseg.web.service import DISPLAY_SIDE, PageResult, SegmentService

__all__ = ["CSS", "TYPED", "build_app", "launch"]

TYPED = "my classes (typed above)"
TABLE_HEADERS = ["class", "pixels (%)", "mean score"]

CSS = """
.lmseg-banner {padding: 10px 14px; border-radius: 8px; background: #fff4e5; border: 1px solid #f0b35b;
               color: #7a4a00; font-weight: 600;}
.lmseg-legend {list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: 6px 14px;}
.lmseg-legend-item {display: flex; align-items: center; gap: 6px;}
.lmseg-swatch {width: 14px; height: 14px; border-radius: 3px; border: 1px solid rgba(0,0,0,.35); display: inline-block;}
.lmseg-share {color: #666; font-variant-numeric: tabular-nums;}
.lmseg-status-error {color: #b00020; font-weight: 600;}
.lmseg-status-ok {color: #1b5e20;}
"""


def _status(message: str, *, error: bool) -> str:
    kind = "error" if error else "ok"
    text = f"error: {message}" if error else message
    return f'<p class="lmseg-status-{kind}" role="status">{html.escape(text)}</p>'


def _header(service: SegmentService) -> str:
    limits = service.limits
    lines = [
        "# lmseg: segment your image into your classes",
        f"Model **{service.model_name}** · images up to {limits.max_upload_bytes / 2**20:.3g} MB and "
        f"{limits.max_pixels / 1e6:.3g} million pixels · up to {limits.max_classes} classes and "
        f"{limits.max_class_pixels / 1e6:,.0f} million pixels x classes · {limits.time_limit_s:.3g} s per request",
    ]
    return "\n\n".join(lines)


def _banner(service: SegmentService) -> str:
    if not service.demo_weights:
        return ""
    return (
        '<div class="lmseg-banner" id="demo-weights">demo weights: the output is not meaningful. '
        f"{html.escape(service.model_name)} runs with random weights to show the page; start it with a "
        "trained model (python -m pipelines.demo --model NAME --checkpoint PATH) for real results.</div>"
    )


def _table(result: PageResult) -> list[list[Any]]:
    """Every class, in the legend's order (largest share first; classes with no pixels last)."""
    return [
        [row.name, round(100 * row.share, 2), None if row.mean_score is None else round(row.mean_score, 3)]
        for row in by_share(result.rows)
    ]


def _on_upload(service: SegmentService, path: str | None) -> tuple[np.ndarray | None, str]:
    """Show a preview of a newly chosen file, or say at once why it cannot be used."""
    if path is None:
        return None, ""
    try:
        rgb = read_upload(path, service.limits)
    except LmsegError as exc:
        return None, _status(str(exc), error=True)
    height, width = rgb.shape[:2]
    return shrink(rgb, DISPLAY_SIDE), _status(f"{Path(path).name}: {width}x{height} pixels, ready", error=False)


def _on_run(service: SegmentService, path: str | None, classes: str, vocabulary: str, table: str | None):
    """The Run button: everything the result column shows, or an error in the status line."""
    builtin = None if vocabulary in (None, "", TYPED) else vocabulary
    try:
        result = service.segment(path, classes, builtin=builtin, attribute_table=table)
    except LmsegError as exc:
        empty = gr.update(choices=[], value=None)
        return _status(str(exc), error=True), None, "", None, empty, None, None, None
    names = list(result.vocabulary.names)
    ordered = by_share(result.rows)  # the heat-map menu lists classes as the legend and table do
    message = f"{len(names)} classes in {result.seconds:.2f} s"
    return (
        _status(message, error=False),
        result.overlay,
        result.legend,
        _table(result),
        gr.update(choices=[row.name for row in ordered], value=ordered[0].name),
        heat_map(result.heat[ordered[0].index]) if len(result.heat) else None,
        [str(result.label_path), str(result.overlay_path)],
        {"names": names, "heat": result.heat},
    )


def _busy_js() -> str:
    """JavaScript showing the status line of a running request at once, in the browser (an
    earlier error must not stand while the request waits for the server)."""
    return f"() => {json.dumps(_status('segmenting ...', error=False))}"


def _on_sample(event: gr.SelectData) -> tuple[Any, Any, Any, str]:
    """A click on a sample photograph: it becomes the upload, its class list the classes (and
    the vocabulary goes back to the typed classes). A crafted event with another index is
    answered in the status line."""
    index = event.index
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(SAMPLES):
        return gr.update(), gr.update(), gr.update(), _status(f"there is no sample {index!r}", error=True)
    sample = SAMPLES[index]
    return str(samples_dir() / sample.file), sample.classes, TYPED, gr.update()


def _on_heat_class(state: dict | None, name: str | None) -> np.ndarray | None:
    if not state or name not in state["names"] or not len(state["heat"]):
        return None
    return heat_map(state["heat"][state["names"].index(name)])


def _api_segment(service: SegmentService, path: str | None, classes: str, vocabulary: str):
    """The programmatic endpoint: label PNG, overlay PNG, class table as JSON."""
    try:
        result = service.segment(path, classes, builtin=vocabulary or None)
    except LmsegError as exc:
        raise gr.Error(f"error: {exc}", print_exception=False) from None
    rows = [{"index": r.index, "class": r.name, "share": r.share, "mean_score": r.mean_score, "colour": r.colour}
            for r in result.rows]
    return str(result.label_path), str(result.overlay_path), {"classes": rows, "seconds": result.seconds}


def build_app(service: SegmentService) -> gr.Blocks:
    """The page (not launched). Events run one at a time (Gradio's queue, concurrency 1)."""
    # delete_cache: Gradio's copies of uploads and results older than 2 h go, checked hourly.
    with gr.Blocks(title=f"lmseg · {service.model_name}", analytics_enabled=False, delete_cache=(3600, 7200)) as app:
        gr.Markdown(_header(service))
        if service.demo_weights:
            gr.HTML(_banner(service))
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                upload = gr.File(label="Image: drop a file here or click to upload", type="filepath",
                                 elem_id="image-upload", height=110)
                samples = gr.Gallery(
                    [(str(samples_dir() / sample.file), sample.title) for sample in SAMPLES],
                    label="Or click a sample photograph", elem_id="samples", columns=len(SAMPLES), rows=1,
                    height=150, allow_preview=False, object_fit="cover", interactive=False, buttons=[],
                )
                preview = gr.Image(label="Your image", interactive=False, elem_id="preview", height=260,
                                   buttons=[])
                classes = gr.Textbox(label="Classes", elem_id="classes", lines=2,
                                     placeholder="cat, dog, sofa;couch",
                                     info='separated by commas or new lines; synonyms of one class after ";". '
                                          "Leave empty to use a built-in vocabulary below")
                offered = [(f"{name} ({size} classes)", name) for name, size in service.offered_vocabularies()]
                vocabulary = gr.Dropdown([(TYPED, TYPED), *offered], value=TYPED, label="Vocabulary",
                                         elem_id="vocabulary",
                                         info="or a built-in vocabulary instead of typed classes (those of up to "
                                              f"{service.limits.max_classes} classes)")
                with gr.Accordion("Attribute table (optional)", open=False, visible=service.uses_attribute_table):
                    table_file = gr.File(label="a stage-1 Parquet table for these classes (make prompts)",
                                         file_types=[".parquet"], type="filepath", elem_id="attribute-table")
                run = gr.Button("Segment", variant="primary", elem_id="run")
            with gr.Column(scale=3, min_width=420):
                status = gr.HTML(elem_id="status")
                overlay = gr.Image(label="Overlay", interactive=False, elem_id="overlay", format="png", height=420)
                legend = gr.HTML(elem_id="legend")
                table = gr.Dataframe(headers=TABLE_HEADERS, datatype=["str", "number", "number"], interactive=False,
                                     elem_id="class-table", label="Classes", max_height=260)
                with gr.Row():
                    heat_class = gr.Dropdown(choices=[], label="Score heat map of", elem_id="heat-class", scale=1)
                    heat = gr.Image(label="Score (dark 0 to yellow 1)", interactive=False, elem_id="heat",
                                    height=220, scale=2)
                downloads = gr.File(label="Downloads: label PNG (pixel = class index) and overlay PNG",
                                    file_count="multiple", interactive=False, elem_id="downloads")
        state = gr.State()
        upload.change(lambda p: _on_upload(service, p), upload, [preview, status], api_visibility="private")
        samples.select(_on_sample, None, [upload, classes, vocabulary, status], api_visibility="private")
        run.click(None, None, status, js=_busy_js(), queue=False, api_visibility="private").then(
            lambda *a: _on_run(service, *a), [upload, classes, vocabulary, table_file],
            [status, overlay, legend, table, heat_class, heat, downloads, state], api_visibility="private",
        )
        heat_class.change(_on_heat_class, [state, heat_class], heat, api_visibility="private")
        _api_endpoint(service)
    return app


def _api_endpoint(service: SegmentService) -> None:
    """``/segment`` for programs: hidden components, a hidden trigger."""
    with gr.Row(visible=False):
        image = gr.File(type="filepath")
        classes = gr.Textbox()
        vocabulary = gr.Textbox()
        label_png = gr.File()
        overlay_png = gr.File()
        table = gr.JSON()
        trigger = gr.Button()
    trigger.click(lambda *a: _api_segment(service, *a), [image, classes, vocabulary], [label_png, overlay_png, table],
                  api_name="segment")


def launch(app: gr.Blocks, service: SegmentService, *, host: str, port: int, block: bool = True):
    """Serve the page; returns what ``Blocks.launch`` returns."""
    theme = gr.themes.Soft(primary_hue="teal", font=["system-ui", "sans-serif"],
                           font_mono=["ui-monospace", "monospace"])
    app.queue(default_concurrency_limit=1, max_size=32)
    return app.launch(
        server_name=host, server_port=port, prevent_thread_lock=not block, quiet=True, show_error=True,
        allowed_paths=[str(samples_dir()), str(service.output_root)], max_file_size=service.limits.max_upload_bytes,
        theme=theme, css=CSS, ssr_mode=False, footer_links=["api"], run_history=False,
    )
