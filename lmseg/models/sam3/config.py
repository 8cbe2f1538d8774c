"""The sam3 method's settings: every open choice of turning SAM 3's detections into one label map.

SAM 3 answers a text prompt with up to ``Q`` (200) instance masks, a detection score per
instance, one presence score per prompt ("is the concept in the image at all") and one
semantic-segmentation map per prompt. Semantic segmentation needs one label per pixel over
all classes; neither the SAM 3 paper nor CoCo-SAM3 (arXiv 2604.19648, whose code is not public:
"intra-class enhancement" over synonym prompts, then "inter-class competition on a unified
comparable scale") fixes the details here, so each choice is a field of :class:`Sam3Config`.
The rule (``docs/sam3.md`` has it with its reasons):

1. **Prompts.** Every class becomes prompts: its names (all synonyms with ``synonyms=True``,
   else the primary name) and, with a stage-1 attribute table, up to ``attribute_prompts``
   attribute phrases written as noun phrases ("brown dog", "dog with fur").
2. **Evidence of a prompt** ``p`` at each pixel ``x`` of SAM 3's mask grid, with
   ``s_q = sigmoid(detection logit_q) * presence_p`` (``presence_p = sigmoid(presence logit)``,
   or 1 with ``use_presence=False``):

   * instances: ``I_p(x) = max_q s_q * sigmoid(mask logit_q(x))`` over the queries with
     ``s_q > instance_threshold`` (0 where none);
   * semantic: ``S_p(x) = sigmoid(semantic logit_p(x)) * presence_p``;
   * ``evidence``: ``"instances"`` (``I_p``), ``"semantic"`` (``S_p``) or ``"both"``
     (``max(I_p, S_p)`` or their mean, ``evidence_combine``).

3. **A class's score** is the max (or mean, ``prompt_pooling``) of its prompts' evidence:
   synonyms and attribute phrases strengthen one class instead of competing.
4. **Competition.** Class scores are brought to the image size (bilinear; SAM 3 sees the image
   squeezed to its square). ``competition="argmax"``: the scores are the class scores, the
   label the argmax. ``"softmax"``: the scores are ``softmax_c(score_c / temperature)`` (one
   comparable scale summing to 1 over the classes). Pixels whose best score is below
   ``background_threshold`` (0: never) go to class ``background_index``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from lmseg.errors import LmsegError
from lmseg.models import building
from lmseg.vocab.class_lists import get_class_list_source

Evidence = Literal["instances", "semantic", "both"]
Pool = Literal["max", "mean"]
Competition = Literal["argmax", "softmax"]


@dataclass(frozen=True)
class Sam3Config(building.ConfigData):
    """Settings of the sam3 method (defaults: the rule of the module docstring).

    Attributes:
        synonyms: every synonym of a class is a prompt (False: only its primary name).
        attribute_prompts: with an attribute table, at most this many attribute phrases per
            class become prompts, colour, shape and texture phrases in turn (0: none).
        evidence: ``"instances"``, ``"semantic"`` or ``"both"`` (see the module docstring).
        evidence_combine: with ``"both"``: ``"max"`` or ``"mean"`` of the two.
        instance_threshold: instances whose score ``s_q`` is not above it are ignored
            (SAM 3's own processor keeps scores above 0.5 for display).
        use_presence: multiply by the prompt's presence score (SAM 3's own processor does).
        prompt_pooling: a class's score from its prompts: ``"max"`` or ``"mean"``.
        competition: ``"argmax"`` or ``"softmax"`` over the classes.
        temperature: of the ``"softmax"`` competition.
        background_threshold: pixels whose best score is below it get ``background_index``
            (0 disables).
        background_index: the class index of "background".
        class_list: id of a published class list (:mod:`lmseg.vocab.class_lists`): when the
            vocabulary is that list's benchmark, its classes are prompted with the list's names
            (set by the benchmark presets, :func:`lmseg.models.presets.sam3_inference`).
        prompt_batch: prompts per ``forward_grounding`` call (memory: each prompt holds ``Q``
            mask logits at 4/14 of the input side; results do not depend on it beyond
            floating-point rounding).
        text_batch: prompts per text-encoder call.
        class_chunk: classes brought to the image size at a time for the label map (memory
            only; the scores of ``logits()`` are ``N x H x W`` anyway).
        max_pixels: larger images are refused before decoding.
        max_aspect_ratio: more elongated images are refused (SAM 3 squeezes the image into
            its square, so an extreme one keeps few mask pixels across its short side).
    """

    synonyms: bool = True
    attribute_prompts: int = 3
    evidence: Evidence = "both"
    evidence_combine: Pool = "max"
    instance_threshold: float = 0.0
    use_presence: bool = True
    prompt_pooling: Pool = "max"
    competition: Competition = "argmax"
    temperature: float = 0.05
    background_threshold: float = 0.0
    background_index: int = 0
    class_list: str = ""
    prompt_batch: int = 8
    text_batch: int = 64
    class_chunk: int = 64
    max_pixels: int = 40_000_000
    max_aspect_ratio: float = 16.0

    def __post_init__(self) -> None:
        problems = []
        for name, allowed in (("evidence", ("instances", "semantic", "both")), ("evidence_combine", ("max", "mean")),
                              ("prompt_pooling", ("max", "mean")), ("competition", ("argmax", "softmax"))):
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if self.attribute_prompts < 0:
            problems.append("attribute_prompts must be non-negative")
        if not 0.0 <= self.instance_threshold < 1.0:
            problems.append("instance_threshold must lie in [0, 1)")
        if not 0.0 <= self.background_threshold <= 1.0:
            problems.append("background_threshold must lie in [0, 1]")
        if not self.temperature > 0:
            problems.append("temperature must be positive")
        for name in ("prompt_batch", "text_batch", "class_chunk"):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be positive")
        if self.max_pixels < 1 or not self.max_aspect_ratio >= 1:
            problems.append("max_pixels and max_aspect_ratio must be at least 1")
        if problems:
            raise LmsegError("invalid Sam3Config: " + "; ".join(problems))
        if self.class_list:
            get_class_list_source(self.class_list)  # an unknown id fails here, before any model loads


@dataclass(frozen=True)
class Sam3Variant(building.ConfigData):
    """The model behind a sam3 segmenter.

    Attributes:
        name: the variant.
        model: the SAM 3 architecture (:data:`lmseg.backbones.sam3_build.SAM3_ARCHS`).
        image_size: SAM 3's square input side (1008 as released).
    """

    name: str
    model: str
    image_size: int


SAM3_MODELS: dict[str, Sam3Variant] = {
    "sam3": Sam3Variant("sam3", "sam3", 1008),
    "sam3_tiny": Sam3Variant("sam3_tiny", "sam3_test_tiny", 112),
}
