"""Benchmark presets, in one place for every method: which class names a published run sends,
and the published test protocols the methods share.

* :func:`published_queries` / :func:`class_list_record`: a benchmark's published class list
  (Trident's, CAT-Seg's, TCL's files in ``lmseg/vocab/data``) applies when the vocabulary *is*
  that benchmark's; any other vocabulary is queried with its own names.
* :func:`catseg_inference`: CAT-Seg's test protocol, which LMSeg and MROVSeg follow.
* :func:`tcl_inference`: TCL's class names, which MGCA (a TCL-family method) sends.

CAT-Seg's protocol:

CAT-Seg (``cat_seg_model.py`` and ``eval.sh`` at commit 6d3a188) tests every benchmark the same
way; only the class list changes:

* detectron2's ``ResizeShortestEdge(640, max_size=2560)``: PIL bilinear on the uint8 image;
* ``inference_sliding_window``: that image resized to 640 x 640, ``384 x 384`` windows with
  overlap 0.333 (stride 256), plus the keep-ratio image resized to 384 x 384 as a global view,
  window and global probabilities averaged; ViT-L/14 resizes each 384 view to its 336 input;
* ``MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON``: the benchmark's class list (``datasets/*.json``,
  shipped in ``lmseg/vocab/data/catseg``), several names of a class separated by ", ".

``catseg_inference("ade150")`` gives those inference-config fields; the builders of
:mod:`lmseg.models.lmseg` and :mod:`lmseg.models.mrovseg` take ``benchmark=`` (``--set
benchmark=ade150`` on the command line). MROVSeg keeps its own resize (its slices) and takes
only the class list.
"""

from __future__ import annotations

from typing import Any

from lmseg.data import get_benchmark
from lmseg.errors import LmsegError
from lmseg.vocab import Vocabulary
from lmseg.vocab.class_lists import benchmark_class_list, get_class_list_source, load_class_list

__all__ = ["CATSEG_PRECISION", "CATSEG_PROTOCOL", "catseg_inference", "class_list_record", "published_queries",
           "tcl_inference"]

#: CAT-Seg's resize and windows (``inference_sliding_window`` defaults, ``INPUT.MIN_SIZE_TEST``,
#: ``INPUT.MAX_SIZE_TEST``).
CATSEG_PROTOCOL: dict[str, Any] = {
    "short_side": 640, "max_long_side": 2560, "pil_resize": True, "square": 640,
    "window": 384, "overlap": 0.333, "global_view": True,
}

#: The precision of the published runs.
CATSEG_PRECISION = ("not stated by LMSeg (no public code); CAT-Seg casts CLIP to fp32 (clip_model.float() in "
                       "cat_seg_predictor.py) and its configs leave detectron2's AMP off")


def catseg_inference(benchmark: str, *, class_list_only: bool = False) -> dict[str, Any]:
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


#: Benchmarks whose TCL list sends a "background" query that TCL itself never sends (it drops
#: ``CLASSES[0]`` and thresholds a constant background score, ``bg_thresh`` 0.4); MGCA here has
#: no background threshold, so these have no preset.
BACKGROUND_THRESHOLDED = ("voc21", "pc60", "coco_object")


def tcl_inference(benchmark: str) -> dict[str, Any]:
    """The MGCA inference-config fields of the family's published protocol on ``benchmark``:
    TCL's class names (mmsegmentation's ``CLASSES``, ``lmseg/vocab/data/tcl``).

    Raises:
        LmsegError: no TCL list for ``benchmark``, or one whose background TCL thresholds.
    """
    if benchmark in BACKGROUND_THRESHOLDED:
        raise LmsegError(f"no MGCA preset for {benchmark}: TCL does not query its 'background' class but thresholds "
                         "a constant background score, which this MGCA does not implement; evaluate the benchmark "
                         "without benchmark= (every class is then queried by its name)")
    return {"class_list": benchmark_class_list("tcl", benchmark)}


def published_queries(list_id: str, vocabulary: Vocabulary) -> dict[int, tuple[str, ...]] | None:
    """Class index -> query names of list ``list_id``, if ``vocabulary`` is that list's benchmark.

    "Is that benchmark" means: the same classes (content hash) as the built-in vocabulary of
    the dataset ``source.benchmark`` opens. Any other vocabulary (a user's list) gets None and
    is queried with its own names; so does every vocabulary when ``list_id`` is ``""`` (no list).
    """
    if not list_id:
        return None

    source = get_class_list_source(list_id)
    try:
        benchmark_classes = get_benchmark(source.benchmark).classes()
    except LmsegError:  # a benchmark without a dataset reader here (pc60, voc20b)
        return None
    if len(vocabulary) != source.num_classes or vocabulary.content_sha256() != benchmark_classes.content_sha256():
        return None
    return {index: entry.names for index, entry in enumerate(load_class_list(list_id).classes)}


def class_list_record(list_id: str, vocabulary: Vocabulary) -> dict[str, str] | None:
    """For a run's protocol record: the list's id, URL, licence and file sha256 if ``list_id``
    applies to ``vocabulary`` (see :func:`published_queries`), else None (its own names are sent)."""
    if published_queries(list_id, vocabulary) is None:
        return None
    source = get_class_list_source(list_id)
    return {"id": source.id, "url": source.url, "licence": source.licence, "file_sha256": source.sha256}
