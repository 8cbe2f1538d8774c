"""Benchmark presets, in one place for every method: which class names a published run sends,
and the published test protocols the methods share.

* :func:`published_queries` / :func:`class_list_record`: a benchmark's published class list
  (Trident's, CAT-Seg's, TCL's files in ``lmseg/vocab/data``) applies when the vocabulary *is*
  that benchmark's; any other vocabulary is queried with its own names.
* :func:`catseg_inference`: CAT-Seg's test protocol, which LMSeg and MROVSeg follow.
* :func:`tcl_inference`: TCL's class names, which MGCA (a TCL-family method) sends.
* :func:`trident_inference`: Trident's published per-benchmark settings.
* :func:`sam3_inference`: the class names the sam3 method prompts on a benchmark (Trident's
  class files: no SAM 3 semantic-segmentation protocol is public).

Each ``*_inference(benchmark)`` gives fields of a method's predictor settings; a method's
builder applies them with ``benchmark=`` (:func:`lmseg.models.building.variant_settings`).

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

from typing import TYPE_CHECKING, Any

from lmseg.data import get_benchmark
from lmseg.errors import LmsegError
from lmseg.vocab import Vocabulary
from lmseg.vocab.class_lists import benchmark_class_list, get_class_list_source, load_class_list

if TYPE_CHECKING:
    from lmseg.text.embedder import ClassEmbeddings

__all__ = ["CATSEG_PRECISION", "CATSEG_PROTOCOL", "TRIDENT_PRECISION", "TRIDENT_PRESETS", "catseg_inference",
           "class_list_record", "prompts_record", "published_queries", "sam3_inference", "tcl_inference", "trident_inference"]

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


# ---- Trident ------------------------------------------------------------------------------
#
# Trident's public configs (commit a93b346): the project's vocabulary names of the eight
# evaluated benchmarks plus ADE-847 and PC-459. ``pc60`` (PASCAL Context with background) and
# ``coco_object`` (COCO-Object with background) have no built-in vocabulary here: use ``pc59`` /
# ``coco_object80`` with a "background" class prepended (class 0), as the public class files do.
# Refinement stays disabled in every preset (enable it with ``{"refinement": {"enabled": True}}``);
# its thresholds are the published ones. Each preset names Trident's own class file for its
# benchmark (``class_list``, shipped in ``lmseg/vocab/data/trident``): evaluating the
# benchmark's vocabulary sends exactly the published queries ("ship", "table", "trafficlight",
# ...), while other vocabularies are queried with their own names.

#: Trident's background synonyms (first line of its ``cls_voc21.txt`` / ``cls_coco_object.txt``).
VOC_BACKGROUND = (
    "sky", "wall", "tree", "wood", "grass", "road", "sea", "river", "mountain", "sands", "desk", "bed",
    "building", "cloud", "lamp", "door", "window", "wardrobe", "ceiling", "shelf", "curtain", "stair",
    "floor", "hill", "rail", "fence",
)
COCO_OBJECT_BACKGROUND = (
    "sky", "wall", "tree", "wood", "grass", "road", "sea", "river", "mountain", "sands", "desk", "bed",
    "building", "cloud", "floor", "hill", "rail",
)


def _trident(name: str, short_side: int, coarse_thresh: float, **fields: Any) -> dict[str, Any]:
    return {"short_side": short_side, "refinement": {"coarse_thresh": coarse_thresh}, "class_list": f"trident/{name}",
            **fields}


#: Benchmark -> the :class:`~lmseg.models.trident.config.TridentConfig` fields of its published run.
TRIDENT_PRESETS: dict[str, dict[str, Any]] = {
    "voc21": _trident("voc21", 448, 0.2, prob_thd=0.2, background_names=VOC_BACKGROUND),
    "pc60": _trident("pc60", 576, 0.15, prob_thd=0.15),
    "coco_object": _trident("coco_object", 448, 0.25, prob_thd=0.25, background_names=COCO_OBJECT_BACKGROUND),
    "voc20": _trident("voc20", 336, 0.2, stride=112, cos_fac=0.0),
    "pc59": _trident("pc59", 576, 0.15),
    "cocostuff171": _trident("cocostuff171", 448, 0.05),
    "cityscapes19": _trident("cityscapes19", 688, 0.10, cos_fac=3.0, refine_neg_cos=False, split_halves=True),
    "ade150": _trident("ade150", 576, 0.05, refine_neg_cos=False),
    "ade847": _trident("ade847", 448, 0.2),
    "pc459": _trident("pc459", 448, 0.2),
}

#: The precision of Trident's published runs (``trident.py``): CLIP (image and text towers),
#: DINO and SAM's image encoder in fp16 on a GPU; SAM's prompt encoder and mask decoder in fp32.
TRIDENT_PRECISION = "fp16 on GPU (CLIP image+text, DINO, SAM image encoder); SAM prompt side fp32"


def trident_inference(benchmark: str) -> dict[str, Any]:
    """The :class:`~lmseg.models.trident.config.TridentConfig` fields of Trident's published run
    on ``benchmark`` (:data:`TRIDENT_PRESETS`).

    Raises:
        LmsegError: no Trident preset for ``benchmark`` (the message lists the known ones).
    """
    if benchmark not in TRIDENT_PRESETS:
        raise LmsegError(f"no Trident preset {benchmark!r}; known: {', '.join(sorted(TRIDENT_PRESETS))}")
    return dict(TRIDENT_PRESETS[benchmark])


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


def prompts_record(text: ClassEmbeddings, list_id: str, vocabulary: Vocabulary) -> dict[str, object]:
    """For a run's protocol record: the hashes of what made ``text`` (its prompts, its attribute
    rows) and the class list it was written with (:func:`class_list_record`)."""
    return {"sha256": text.prompts_sha256, "attribute_table_sha256": text.table_sha256,
            "class_list": class_list_record(list_id, vocabulary)}


# ---- sam3 ---------------------------------------------------------------------------------
#
# Neither SAM 3 nor CoCo-SAM3 (arXiv 2604.19648; no public code) publishes its per-benchmark
# class names here. The sam3 presets prompt with the class files of the training-free family
# that Trident ships (the ProxyCLIP / SCLIP lineage): the same benchmarks, and a "background"
# class spelt as its published synonyms ("sky; wall; tree; ..."), which SAM 3 can ground like
# any other concept. The rule's other settings keep their defaults.


def sam3_inference(benchmark: str) -> dict[str, Any]:
    """The :class:`~lmseg.models.sam3.config.Sam3Config` fields of the sam3 preset for ``benchmark``:
    its Trident class file (``class_list``).

    Raises:
        LmsegError: no class file for ``benchmark`` (the message lists the known ones).
    """
    if benchmark not in TRIDENT_PRESETS:
        raise LmsegError(f"no sam3 preset {benchmark!r}; known: {', '.join(sorted(TRIDENT_PRESETS))}")
    return {"class_list": TRIDENT_PRESETS[benchmark]["class_list"]}
