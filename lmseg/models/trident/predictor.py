"""The Trident predictor: images and vocabularies in, label maps and scores out.

:class:`TridentPredictor` implements :class:`lmseg.inference.Segmenter` around a
:class:`~lmseg.models.trident.model.TridentModel`. Per image (SEEDS 2.1):

* CLIP side: keep-ratio resize to the configured short side (``cv2.resize`` bilinear on uint8),
  CLIP normalisation on the 0-255 scale, sides fitted to the CLIP patch and window;
* SAM side: the original image with sides rounded up to multiples of 16, then SAM's own
  preprocessing (``SamPredictor.set_image``); the left and right halves separately when
  ``config.split_halves`` (Cityscapes);
* cosines -> bilinear to the original size -> x ``logit_scale`` -> softmax over queries -> max
  over each class's queries -> background threshold -> optional SAM refinement.

Text embeddings are memoised per vocabulary (content hash, background names, class list) and
stored in the shared embedding cache (:class:`lmseg.text.cache.EmbeddingCache`). With
``config.class_list`` (set by every benchmark preset) the benchmark's own vocabulary is queried
with the published class file's names; any other vocabulary with its own names.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from dataclasses import replace as replace_fields

import numpy as np
import torch
from segment_anything import SamPredictor

from lmseg.backbones.sam import predictor_with_features
from lmseg.data.prepare.resize import RESIZE_LIBRARY
from lmseg.errors import LmsegError
from lmseg.inference import ImageInput, ImageLimits, Segmentation, VocabularyInput, as_rgb_array, as_vocabulary
from lmseg.models.presets import TRIDENT_PRECISION, class_list_record, published_queries
from lmseg.models.trident.classify import class_probabilities, labels_with_background
from lmseg.models.trident.config import TridentConfig
from lmseg.models.trident.model import SamInput, TridentModel
from lmseg.models.trident.preprocess import fit_to_patches, normalize_clip, resize_short_side, round_up_for_sam
from lmseg.models.trident.prompters import Prompter, Sam2Prompts, SamPrompts
from lmseg.models.trident.refine import refine_with_sam
from lmseg.text.cache import EmbeddingCache, cache_key, clip_text_fingerprint
from lmseg.text.ensemble import QueryEmbeddings, encode_vocabulary, ensemble_embeddings
from lmseg.vocab import Vocabulary


class TridentPredictor:
    """Training-free open-vocabulary segmentation with CLIP, DINO and SAM.

    Args:
        model: the backbones and constants (its ``config`` is used).
        device: where inputs go (the model must already be there).
    """

    def __init__(self, model: TridentModel, *, device: str | torch.device = "cpu",
                 cache: EmbeddingCache | None = EmbeddingCache()) -> None:
        self.model = model.eval()
        self.device = torch.device(device)
        self.cache = cache
        self._text_cache: dict[tuple, QueryEmbeddings] = {}
        self._weights_id: str | None = None

    @property
    def config(self) -> TridentConfig:
        """The method's constants."""
        return self.model.config

    def settings(self) -> dict[str, object]:
        """What decides the output, for reports: every field of :class:`TridentConfig` (resize,
        window / stride, background threshold and names, refinement, ...)."""
        return asdict(self.config)

    # ---- text ----------------------------------------------------------------------------

    def text_embeddings(self, vocabulary: VocabularyInput) -> tuple[Vocabulary, QueryEmbeddings]:
        """The vocabulary and its query embeddings (cached).

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
        key = (vocab.content_sha256(), cfg.background_index, cfg.background_names, cfg.class_list)
        if key not in self._text_cache:
            self._text_cache[key] = self._encode(vocab, replace)
        return vocab, self._text_cache[key]

    def _encode(self, vocab: Vocabulary, replace: dict[int, tuple[str, ...]] | None) -> QueryEmbeddings:
        """Template-ensemble query embeddings on the device, through the shared embedding cache
        (keyed by the CLIP model, its text weights and the queries) unless ``cache`` is None."""
        text = encode_vocabulary(self.model.clip, vocab, replace=replace,
                                 embed=None if self.cache is None else self._cached_ensemble)
        return replace_fields(text, embeddings=text.embeddings.to(self.device),
                              query_to_class=text.query_to_class.to(self.device))

    def _cached_ensemble(self, queries: list[str]) -> torch.Tensor:
        clip = self.model.clip
        if self._weights_id is None:
            self._weights_id = clip_text_fingerprint(clip.model)
        digest = hashlib.sha256(json.dumps(["imagenet80", queries]).encode()).hexdigest()
        key = cache_key(model_name=clip.model_name, weights_id=self._weights_id, queries=digest)
        return self.cache.tensor(clip.model_name, key, len(queries), lambda: ensemble_embeddings(clip, queries))

    @property
    def image_limits(self) -> ImageLimits:
        """The images this segmenter accepts (checked before decoding)."""
        cfg = self.config
        return ImageLimits(cfg.max_pixels, min(cfg.max_aspect_ratio, self.model.max_aspect_ratio),
                           f"TridentConfig.max_pixels / max_aspect_ratio, --set config.max_pixels=N; this model's SAM "
                           f"allows aspect ratios up to {self.model.max_aspect_ratio:g}:1")

    def protocol(self, vocabulary: VocabularyInput) -> dict[str, object]:
        """What decides the output for ``vocabulary``: settings, queries, resizes, precision (JSON-ready)."""
        vocab, text = self.text_embeddings(vocabulary)
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

    @torch.no_grad()
    def _coarse(self, image: np.ndarray, text: QueryEmbeddings):
        cfg = self.config
        resized = resize_short_side(image, cfg.short_side, cfg.max_long_side)
        clip_image = fit_to_patches(normalize_clip(resized), self.model.patch, cfg.window).to(self.device)
        sam_inputs, rounded = self._sam_inputs(image)
        cosines, sam_features = self.model(clip_image, sam_inputs, text.embeddings.to(self.device))
        probs = class_probabilities(
            cosines, image.shape[:2], logit_scale=cfg.logit_scale, query_to_class=text.query_to_class,
            num_classes=text.num_classes,
        )
        return probs, sam_features, sam_inputs, rounded

    def logits(self, image: ImageInput, vocabulary: VocabularyInput) -> np.ndarray:
        """``(N, H, W)`` float32 class probabilities in [0, 1] at the image's resolution.

        These are Trident's coarse scores (softmax over all queries of ``logit_scale`` x
        cosine, then the max over each class's synonyms), before background thresholding,
        argmax and refinement: the numbers to compare with another implementation.
        """
        rgb = as_rgb_array(image, self.image_limits)
        _, text = self.text_embeddings(vocabulary)
        probs, *_ = self._coarse(rgb, text)
        return probs.float().cpu().numpy()

    def predict(self, image: ImageInput, vocabulary: VocabularyInput, *, return_scores: bool = False) -> Segmentation:
        """Segment one image (path, PIL or array) into the classes of ``vocabulary``.

        Returns:
            A :class:`~lmseg.inference.Segmentation`; ``scores`` (if asked for) are the coarse
            probabilities, or the refined scores when refinement is enabled and kept a mask.
        """
        rgb = as_rgb_array(image, self.image_limits)
        vocab, text = self.text_embeddings(vocabulary)
        probs, sam_features, sam_inputs, rounded = self._coarse(rgb, text)
        cfg = self.config
        labels = labels_with_background(probs, cfg.prob_thd, cfg.background_index)
        scores = probs
        if cfg.refinement.enabled:
            result = refine_with_sam(self._prompter(rgb, rounded, sam_features, sam_inputs), labels, probs,
                                     cfg.refinement)
            labels, scores = result.labels, result.scores
        return Segmentation(
            label_map=labels.cpu().numpy().astype(np.int32),
            class_names=tuple(vocab.names),
            scores=scores.float().cpu().numpy() if return_scores else None,
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
