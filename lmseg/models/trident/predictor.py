"""The Trident predictor: images and vocabularies in, label maps and scores out.

:class:`TridentPredictor` implements :class:`lmseg.inference.Segmenter` around a
:class:`~lmseg.models.trident.model.TridentModel`. Per image (the steps in :mod:`lmseg.models.trident`):

* CLIP side: keep-ratio resize to the configured short side (``cv2.resize`` bilinear on uint8),
  CLIP normalisation on the 0-255 scale, sides fitted to the CLIP patch and window;
* SAM side: the original image with sides rounded up to multiples of 16, then SAM's own
  preprocessing (``SamPredictor.set_image``); the left and right halves separately when
  ``config.split_halves`` (Cityscapes);
* cosines -> bilinear to the original size -> x ``logit_scale`` -> softmax over queries -> max
  over each class's queries -> background threshold -> optional SAM refinement.

Large vocabularies (:mod:`lmseg.inference.classes`): with ``inference.max_classes = K`` the
cosines on the SAM grid pick K candidate classes (the rule there, with Trident's logit scale;
the background class is always kept when ``prob_thd`` thresholds), and only their queries go
through the upsampling and the softmax; the others score 0. Upsampled cosines and the softmax
run chunk of classes by chunk of classes (``inference.chunk_elements``) into the label map.

Text embeddings (one row per query, :class:`lmseg.text.embedder.TextEmbedder`) are memoised
per vocabulary and query names and stored in the shared embedding cache; with an attribute
table, each query's template ensemble is blended with its class's attribute sentences
(``TridentConfig.attribute_weight``). With
``config.class_list`` (set by every benchmark preset) the benchmark's own vocabulary is queried
with the published class file's names; any other vocabulary with its own names.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np
import torch
from segment_anything import SamPredictor

from lmseg.backbones.sam import SamFeatures, predictor_with_features
from lmseg.data.prepare.resize import RESIZE_LIBRARY
from lmseg.errors import LmsegError
from lmseg.inference import ImageInput, ImageLimits, Segmentation, VocabularyInput, as_rgb_array, as_vocabulary
from lmseg.inference.classes import ClassBudget, LabelReduction, candidate_scores, rejection_record, select_candidates
from lmseg.models.presets import TRIDENT_PRECISION, class_list_record, published_queries
from lmseg.models.trident.classify import class_probabilities, with_background
from lmseg.models.trident.config import TridentConfig
from lmseg.models.trident.model import SamInput, TridentModel, TridentTokens
from lmseg.models.trident.preprocess import fit_to_patches, normalize_clip, resize_short_side, round_up_for_sam
from lmseg.models.trident.prompters import Prompter, Sam2Prompts, SamPrompts
from lmseg.models.trident.refine import refine_with_sam
from lmseg.text.cache import EmbeddingCache
from lmseg.text.embedder import AttributeTableOption, ClassEmbeddings, TextEmbedder
from lmseg.text.prompts import PromptSpec
from lmseg.text.table import TableInput


@dataclass
class Coarse:
    """Trident's coarse result of one image (before thresholding and refinement).

    Attributes:
        reduction: labels and best probabilities (scores if kept) over ``classes``, indexed
            ``0 .. len(classes) - 1``.
        classes: ``(n,)`` the vocabulary's class of each index of ``reduction``.
        kept: the classes early rejection kept, or None (then ``classes`` is every class).
        sam_features, sam_inputs, rounded: SAM's side, for refinement prompts.
    """

    reduction: LabelReduction
    classes: torch.Tensor
    kept: torch.Tensor | None
    sam_features: list[SamFeatures]
    sam_inputs: list[SamInput]
    rounded: np.ndarray

    def full_scores(self, num_classes: int) -> torch.Tensor:
        """``(N, H, W)`` scores of every class of the vocabulary (rejected classes 0)."""
        scores = self.reduction.scores
        if self.kept is None:
            return scores
        full = scores.new_zeros(num_classes, *scores.shape[1:])
        full[self.kept] = scores
        return full


class TridentPredictor(AttributeTableOption):
    """Training-free open-vocabulary segmentation with CLIP, DINO and SAM.

    Args:
        model: the backbones and constants (its ``config`` is used).
        device: where inputs go (the model must already be there).
        cache: the text-embedding cache; None disables it.
        attribute_table: a stage-1 attribute table of the vocabulary's classes (:mod:`lmseg.text.table`):
            each query's template ensemble is blended with its class's attribute sentences
            (``config.attribute_weight``); None: the published queries alone.
        inference: class early rejection and class chunks (:class:`~lmseg.inference.classes.ClassBudget`).
    """

    def __init__(self, model: TridentModel, *, device: str | torch.device = "cpu",
                 cache: EmbeddingCache | None = EmbeddingCache(), attribute_table: TableInput = None,
                 inference: ClassBudget = ClassBudget()) -> None:
        self.model = model.eval()
        self.device = torch.device(device)
        self.inference = inference
        self.text = TextEmbedder(model.clip, spec=PromptSpec(imagenet_templates=True), combination="blend",
                                 attribute_weight=model.config.attribute_weight, synonyms="separate",
                                 attribute_table=attribute_table, cache=cache)

    @property
    def config(self) -> TridentConfig:
        """The method's constants."""
        return self.model.config

    def settings(self) -> dict[str, object]:
        """What decides the output, for reports: every field of :class:`TridentConfig` (resize,
        window / stride, background threshold and names, refinement, attribute weight, ...),
        the attribute table and the class rejection settings (``inference``)."""
        table = self.attribute_table
        return {**asdict(self.config), "attribute_table": None if table is None else table.source,
                "inference": asdict(self.inference)}

    # ---- text ----------------------------------------------------------------------------

    def text_embeddings(self, vocabulary: VocabularyInput) -> ClassEmbeddings:
        """The query embeddings of ``vocabulary`` (``embeddings``: ``(Q, 1, D)``, one row per
        query, ``query_to_class`` for the max over synonyms) on the device (memoised, cached).

        Raises:
            LmsegError: a bad vocabulary, or ``config.background_names`` set while the class at
                ``config.background_index`` is not "background".
        """
        vocab = as_vocabulary(vocabulary)
        cfg = self.config
        replace = published_queries(cfg.class_list, vocab)
        if replace is None and cfg.background_names:
            index = cfg.background_index
            if index >= len(vocab) or vocab.classes[index].name != "background":
                raise LmsegError(
                    f"this Trident config replaces class {index} by background synonyms, but the vocabulary's class "
                    f"{index} is {vocab.classes[index].name if index < len(vocab) else 'missing'!r}, not 'background'; "
                    "prepend a 'background' class or use a config with background_names=()"
                )
            replace = {index: cfg.background_names}
        return self.text(vocab, queries=replace, device=self.device)

    @property
    def image_limits(self) -> ImageLimits:
        """The images this segmenter accepts (checked before decoding)."""
        cfg = self.config
        return ImageLimits(cfg.max_pixels, min(cfg.max_aspect_ratio, self.model.max_aspect_ratio),
                           f"TridentConfig.max_pixels / max_aspect_ratio, --set config.max_pixels=N; this model's SAM "
                           f"allows aspect ratios up to {self.model.max_aspect_ratio:g}:1")

    def protocol(self, vocabulary: VocabularyInput) -> dict[str, object]:
        """What decides the output for ``vocabulary``: settings, queries, resizes, precision (JSON-ready)."""
        vocab = as_vocabulary(vocabulary)
        text = self.text_embeddings(vocab)
        cfg = self.config
        clip = self.model.clip.model
        queries = "\n".join(f"{int(c)}\t{q}" for q, c in zip(text.queries, text.query_to_class))
        return {
            "method": "trident",
            "settings": asdict(cfg),
            **self._backbones_record(),
            "queries": {
                "class_list": class_list_record(cfg.class_list, vocab),
                "num_queries": len(text.queries),
                "sha256": hashlib.sha256(queries.encode()).hexdigest(),
                "templates": "open_clip OPENAI_IMAGENET_TEMPLATES (80), mean of normalised embeddings",
                "attribute_table_sha256": text.table_sha256,
                "embeddings_sha256": text.prompts_sha256,
            },
            "resize": {
                "library": RESIZE_LIBRARY,
                "clip": f"cv2 INTER_LINEAR keep-ratio: short side {cfg.short_side}, long side <= {cfg.max_long_side} "
                        f"(mmcv rescale_size); then torch bilinear to multiples of {self.model.patch}, "
                        f"at least {cfg.window}",
                "sam": f"cv2 INTER_LINEAR to multiples of {cfg.sam_multiple}; then segment-anything ResizeLongestSide "
                       f"(PIL bilinear via torchvision) to {self.model.sam.img_size}",
                **({"refinement_sam": f"sam2 SAM2Transforms: torchvision Resize of the original image to "
                                      f"{self.model.refiner.img_size} x {self.model.refiner.img_size}"}
                   if self.model.refiner is not None else {}),
                "output": "torch bilinear (align_corners False) of the cosines to the image size",
            },
            "windows": {"size": cfg.window, "stride": cfg.stride},
            "rejection": rejection_record(self.inference, cfg.logit_scale),
            "precision": {
                "clip_image": str(clip.visual.conv1.weight.dtype),
                "clip_text": str(clip.token_embedding.weight.dtype),
                "dino": str(next(self.model.dino.parameters()).dtype),
                **({"refinement_sam": str(self.model.refiner.dtype)} if self.model.refiner is not None else {}),
                "sam_image_encoder": str(next(self.model.sam.sam.image_encoder.parameters()).dtype),
                "sam_prompt_side": str(next(self.model.sam.sam.mask_decoder.parameters()).dtype),
                "published": TRIDENT_PRECISION,
            },
            "device": str(self.device),
        }

    def _backbones_record(self) -> dict[str, object]:
        """The spatial and refinement backbones where they are not the published ones (else nothing,
        so records of the published models are unchanged)."""
        spatial = getattr(self.model.dino, "name", "")
        record: dict[str, object] = {}
        if spatial:
            record["spatial_backbone"] = spatial
        if self.model.refiner is not None:
            record["refinement_backbone"] = f"SAM 2.1 ({self.model.refiner.img_size} px)"
        return {"backbones": record} if record else {}

    # ---- images --------------------------------------------------------------------------

    def _sam_inputs(self, image: np.ndarray) -> tuple[list[SamInput], np.ndarray]:
        """SAM inputs for an ``(H, W, 3)`` uint8 image and the rounded image they come from."""
        rounded = round_up_for_sam(image, self.config.sam_multiple)
        halves = [rounded]
        if self.config.split_halves:
            middle = rounded.shape[1] // 2
            halves = [np.ascontiguousarray(rounded[:, :middle]), np.ascontiguousarray(rounded[:, middle:])]
        inputs = []
        for part in halves:
            canvas, input_hw = self.model.sam.preprocess_numpy(part)
            inputs.append(SamInput(canvas.to(self.device), input_hw))
        return inputs, rounded

    def _candidates(self, features: TridentTokens, text: ClassEmbeddings) -> torch.Tensor | None:
        """The kept classes (ascending), or None when rejection removes none. The background
        class is always kept when low-probability pixels become background (``prob_thd``)."""
        if not self.inference.rejects(text.num_classes):
            return None
        cfg = self.config
        scores = candidate_scores(features.tokens, text.embeddings[:, 0], cfg.logit_scale,
                                  budget=self.inference.chunk_elements, row_to_class=text.query_to_class,
                                  num_classes=text.num_classes)
        always = (cfg.background_index,) if cfg.prob_thd > 0 and cfg.background_index < text.num_classes else ()
        return select_candidates(scores, self.inference.max_classes, always=always)

    @torch.no_grad()
    def _coarse(self, image: np.ndarray, text: ClassEmbeddings, *, keep_scores: bool) -> Coarse:
        """Trident's coarse result of one image, through class early rejection and chunks of classes."""
        cfg = self.config
        resized = resize_short_side(image, cfg.short_side, cfg.max_long_side)
        clip_image = fit_to_patches(normalize_clip(resized), self.model.patch, cfg.window).to(self.device)
        sam_inputs, rounded = self._sam_inputs(image)
        features = self.model(clip_image, sam_inputs)
        kept = self._candidates(features, text)
        rows, owners = text.embeddings[:, 0], text.query_to_class
        classes = torch.arange(text.num_classes, device=self.device) if kept is None else kept
        if kept is not None:  # the kept classes' queries, their classes renumbered 0 .. K-1
            mine = torch.isin(owners, kept)
            rows, owners = rows[mine], torch.searchsorted(kept, owners[mine])
        reduction = LabelReduction(len(classes), image.shape[:2], device=self.device, keep_scores=keep_scores)
        for chunk, probs in class_probabilities(features.tokens, features.grid, rows, image.shape[:2],
                                                logit_scale=cfg.logit_scale, query_to_class=owners,
                                                budget=self.inference.chunk_elements):
            reduction.add(torch.arange(chunk.start, chunk.stop, device=self.device), probs)
        return Coarse(reduction, classes, kept, features.sam_features, sam_inputs, rounded)

    def logits(self, image: ImageInput, vocabulary: VocabularyInput) -> np.ndarray:
        """``(N, H, W)`` float32 class probabilities in [0, 1] at the image's resolution.

        These are Trident's coarse scores (softmax over all queries of ``logit_scale`` x
        cosine, then the max over each class's synonyms), before background thresholding,
        argmax and refinement: the numbers to compare with another implementation. Classes
        removed by early rejection are 0 (the softmax runs over the kept classes' queries).
        """
        rgb = as_rgb_array(image, self.image_limits)
        text = self.text_embeddings(vocabulary)
        coarse = self._coarse(rgb, text, keep_scores=True)
        return coarse.full_scores(text.num_classes).cpu().numpy()

    def predict(self, image: ImageInput, vocabulary: VocabularyInput, *, return_scores: bool = False) -> Segmentation:
        """Segment one image (path, PIL or array) into the classes of ``vocabulary``.

        Returns:
            A :class:`~lmseg.inference.Segmentation`; ``scores`` (if asked for) are the coarse
            probabilities, or the refined scores when refinement is enabled and kept a mask;
            ``kept`` the classes early rejection kept (None when it is off).
        """
        rgb = as_rgb_array(image, self.image_limits)
        vocab = as_vocabulary(vocabulary)
        text = self.text_embeddings(vocab)
        cfg = self.config
        coarse = self._coarse(rgb, text, keep_scores=return_scores or cfg.refinement.enabled)
        reduction = coarse.reduction
        background = torch.nonzero(coarse.classes == cfg.background_index)  # its index among coarse.classes
        labels = with_background(reduction.labels, reduction.best, cfg.prob_thd,
                                 int(background[0, 0]) if len(background) else cfg.background_index)
        if cfg.refinement.enabled:
            prompter = self._prompter(rgb, coarse.rounded, coarse.sam_features, coarse.sam_inputs)
            result = refine_with_sam(prompter, labels, reduction.scores, cfg.refinement)
            labels, reduction.scores = result.labels, result.scores
        return Segmentation(
            label_map=coarse.classes[labels].cpu().numpy().astype(np.int32),
            class_names=tuple(vocab.names),
            scores=coarse.full_scores(text.num_classes).cpu().numpy() if return_scores else None,
            kept=None if coarse.kept is None else tuple(coarse.kept.tolist()),
        )

    def _prompter(self, rgb: np.ndarray, rounded: np.ndarray, sam_features, sam_inputs: list[SamInput]) -> Prompter:
        """The SAM that answers the refinement prompts, its image set: the affinity SAM (published) or SAM 2.1."""
        refiner = self.model.refiner
        if refiner is None:
            return SamPrompts(self._sam_predictor(rounded, sam_features, sam_inputs))
        # SAM 2.1 sees the original image (it squeezes any size into its square); the prompts'
        # coordinates are in the probability map's frame, which is the original image's
        with torch.no_grad():
            features = refiner.encode(refiner.preprocess_numpy(rgb))
        return Sam2Prompts(refiner.predictor(features, rgb.shape[:2]), refiner.transforms)

    def _sam_predictor(self, rounded: np.ndarray, sam_features, sam_inputs: list[SamInput]) -> SamPredictor:
        """A stock SamPredictor whose image is ``rounded`` (encoded once more only for split halves)."""
        if len(sam_inputs) == 1:
            feats = sam_features[0].features
            input_hw = sam_inputs[0].input_hw
        else:  # Cityscapes: the public code sets the whole image for the prompts
            canvas, input_hw = self.model.sam.preprocess_numpy(rounded)
            feats = self.model.sam.encode(canvas.to(self.device), input_hw).features
        return predictor_with_features(self.model.sam.sam, feats, rounded.shape[:2], input_hw)
