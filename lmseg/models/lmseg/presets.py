"""CAT-Seg's published test protocol per benchmark, which LMSeg (no public code) says it follows.

CAT-Seg (``cat_seg_model.py`` and ``eval.sh`` at commit 6d3a188) tests every benchmark the same
way; only the class list changes:

* detectron2's ``ResizeShortestEdge(640, max_size=2560)``: PIL bilinear on the uint8 image;
* ``inference_sliding_window``: that image resized to 640 x 640, ``384 x 384`` windows with
  overlap 0.333 (stride 256), plus the keep-ratio image resized to 384 x 384 as a global view,
  window and global probabilities averaged; ViT-L/14 resizes each 384 view to its 336 input;
* ``MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON``: the benchmark's class list (``datasets/*.json``,
  shipped in ``lmseg/vocab/data/catseg``), several names of a class separated by ", ".

``benchmark_inference("ade150")`` gives those :class:`InferenceConfig` fields; the builders of
:mod:`lmseg.models.lmseg` and :mod:`lmseg.models.mrovseg` take ``benchmark=`` (``--opt
benchmark=ade150`` on the command line). MROVSeg keeps its own resize (its slices) and takes
only the class list.
"""

from __future__ import annotations

from typing import Any

from lmseg.vocab.class_lists import benchmark_class_list

#: CAT-Seg's resize and windows (``inference_sliding_window`` defaults, ``INPUT.MIN_SIZE_TEST``,
#: ``INPUT.MAX_SIZE_TEST``).
CATSEG_PROTOCOL: dict[str, Any] = {
    "short_side": 640, "max_long_side": 2560, "pil_resize": True, "square": 640,
    "window": 384, "overlap": 0.333, "global_view": True,
}

#: The precision of the published runs.
PUBLISHED_PRECISION = ("not stated by LMSeg (no public code); CAT-Seg casts CLIP to fp32 (clip_model.float() in "
                       "cat_seg_predictor.py) and its configs leave detectron2's AMP off")


def benchmark_inference(benchmark: str, *, class_list_only: bool = False) -> dict[str, Any]:
    """The :class:`~lmseg.models.lmseg.config.InferenceConfig` fields of CAT-Seg's test on ``benchmark``.

    Args:
        benchmark: a benchmark with a CAT-Seg class list (``ade150``, ``ade847``, ``pc59``,
            ``pc459``, ``voc20``, ``cocostuff171``; CAT-Seg's VOC with background,
            ``voc20b``, has no dataset reader here).
        class_list_only: only the class list (a model with its own resize and windows).

    Raises:
        LmsegError: no CAT-Seg list for ``benchmark`` (the message lists the known ones).
    """
    fields = {"class_list": benchmark_class_list("catseg", benchmark)}
    return fields if class_list_only else {**CATSEG_PROTOCOL, **fields}
