"""A web page to segment your own image into your own classes (``python -m pipelines.demo``).

Modules, one concept each:

* :mod:`~lmseg.web.limits`: the bounds of one request (:class:`WebLimits`) and reading an
  uploaded image within them (size and pixel count checked before decoding).
* :mod:`~lmseg.web.service`: :class:`SegmentService`, the plain request handler (image + class
  text + options -> :class:`PageResult`), testable without a browser; it holds the model,
  loaded once, and runs one request at a time under a time limit.
* :mod:`~lmseg.web.render`: what the page shows from a segmentation: legend, class table,
  score heat maps.
* :mod:`~lmseg.web.app`: the Gradio page around the service (imports gradio).
* :mod:`~lmseg.web.samples`: the bundled sample photographs.

Only :mod:`~lmseg.web.app` needs gradio; the rest runs in the plain vision environment.
"""
