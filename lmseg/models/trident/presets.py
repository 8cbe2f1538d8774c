"""Published per-benchmark settings of Trident (public configs at commit a93b346).

``PRESETS[name]`` is a :class:`~lmseg.models.trident.config.TridentConfig`; the keys are the
project's vocabulary names of the eight evaluated benchmarks plus ADE-847 and PC-459.
``pc60`` (PASCAL Context with background) and ``coco_object`` (COCO-Object with background)
have no built-in vocabulary here: use ``pc59`` / ``coco_object80`` with a "background" class
prepended (class 0), as the public class files do. Refinement stays disabled in every preset (enable it
with ``dataclasses.replace``); its thresholds are the published ones.

Each preset names Trident's own class file for its benchmark (``class_list``, shipped in
``lmseg/vocab/data/trident``): evaluating the benchmark's vocabulary sends exactly the
published queries ("ship", "table", "trafficlight", ...), while other vocabularies are queried
with their own names.
"""

from __future__ import annotations

from dataclasses import replace

from lmseg.models.trident.config import RefinementConfig, TridentConfig

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


def _preset(name: str, short_side: int, coarse_thresh: float, **fields) -> TridentConfig:
    return TridentConfig(short_side=short_side, refinement=RefinementConfig(coarse_thresh=coarse_thresh),
                         class_list=f"trident/{name}", **fields)


PRESETS: dict[str, TridentConfig] = {
    "voc21": _preset("voc21", 448, 0.2, prob_thd=0.2, background_names=VOC_BACKGROUND),
    "pc60": _preset("pc60", 576, 0.15, prob_thd=0.15),
    "coco_object": _preset("coco_object", 448, 0.25, prob_thd=0.25, background_names=COCO_OBJECT_BACKGROUND),
    "voc20": _preset("voc20", 336, 0.2, stride=112, cos_fac=0.0),
    "pc59": _preset("pc59", 576, 0.15),
    "cocostuff171": _preset("cocostuff171", 448, 0.05),
    "cityscapes19": _preset("cityscapes19", 688, 0.10, cos_fac=3.0, refine_neg_cos=False, split_halves=True),
    "ade150": _preset("ade150", 576, 0.05, refine_neg_cos=False),
    "ade847": _preset("ade847", 448, 0.2),
    "pc459": _preset("pc459", 448, 0.2),
}

#: The precision of the published runs (``trident.py``): CLIP (image and text towers), DINO
#: and SAM's image encoder in fp16 on a GPU; SAM's prompt encoder and mask decoder in fp32.
PUBLISHED_PRECISION = "fp16 on GPU (CLIP image+text, DINO, SAM image encoder); SAM prompt side fp32"


def preset(name: str, **overrides) -> TridentConfig:
    """The published config of benchmark ``name``, with optional field overrides.

    Raises:
        KeyError: unknown benchmark (the message lists the known ones).
    """
    if name not in PRESETS:
        raise KeyError(f"no Trident preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return replace(PRESETS[name], **overrides)
