"""The MROVSeg predictor: image + vocabulary -> label map and per-class scores (``Segmenter``).

1. keep-ratio resize (bilinear, antialiased when shrinking) so the short side is
   ``InferenceConfig.short_side`` (long side capped at ``max_long_side``), enlarged if needed
   so both sides hold one slice, sides rounded to multiples of CLIP's patch: the working
   resolution the model slices;
2. the model's final prediction set gives Mask2Former's semantic scores
   ``S[c] = sum_q p_q[c] m_q`` (:func:`lmseg.models.mrovseg.model.semantic_inference`);
   they are divided by ``sum_q m_q`` so each pixel's scores are a mask-weighted average of
   the queries' class probabilities, in [0, 1] (the argmax is unchanged). With
   ``upsample="masks"`` (default) this happens at the image's resolution, in Mask2Former's
   order: the stride-4 mask logits are resized (bilinear) to the working size, then to the
   image size, then scored; with ``"scores"`` the scores are computed at stride 4 and resized;
3. optionally (``clip_ensemble > 0``) averaged with CLIP's own dense zero-shot probabilities
   ``softmax(T cos(dense CLIP feature, text))``, resized (bilinear) to the scores' size;
4. resized (bilinear) to the input image's size if not there yet; the label map is their argmax.

Large vocabularies (:mod:`lmseg.inference.classes`): with ``inference.max_classes = K``
CLIP's dense features (computed with the views) pick K candidate classes, at
``clip_temperature``, and only those reach the query decoder's classifier (the softmax over
classes then runs over them and "no object"); the others score 0. Steps 2-4 run chunk of
classes by chunk of classes (``inference.chunk_elements``) into the label map.

With ``InferenceConfig.class_list`` (set by ``benchmark=``, :mod:`lmseg.models.presets`)
the benchmark's own vocabulary is prompted with CAT-Seg's published class names.
"""

from __future__ import annotations

from dataclasses import asdict

import torch
import torch.nn.functional as F

from lmseg.errors import LmsegError
from lmseg.inference.classes import (
    LabelReduction,
    ReducingPredictor,
    candidate_scores,
    chunked_softmax,
    class_chunks,
    class_rows,
    rejection_record,
    select_candidates,
)
from lmseg.inference.image_input import ImageInput, as_rgb_array
from lmseg.inference.precision import Amp, autocast, autocast_dtype
from lmseg.inference.segmenter import VocabularyInput, as_vocabulary
from lmseg.models.mrovseg.config import InferenceConfig
from lmseg.models.mrovseg.model import MROVSegModel, mask_weighted_scores
from lmseg.models.presets import prompts_record, published_queries
from lmseg.text.cache import EmbeddingCache
from lmseg.text.embedder import AttributeTableOption, ClassEmbeddings, TextEmbedder
from lmseg.text.prompts import PromptSpec
from lmseg.text.table import TableInput


class MROVSegPredictor(AttributeTableOption, ReducingPredictor):
    """A :class:`~lmseg.inference.Segmenter` around an :class:`MROVSegModel`.

    Its scores (``logits``, ``scores_tensor``, ``predict(..., return_scores=True)``) are per-class
    scores in [0, 1]: steps 2-4 of the module docstring.

    Args:
        model: the network (its device is used).
        inference: the test protocol.
        attribute_table: stage-1 attribute table for the prompts (:mod:`lmseg.text.table`).
        prompt_spec: sentence templates.
        cache: the embedding cache; None disables it.
        amp: the autocast rule (:mod:`lmseg.inference.precision`): True = bfloat16 on CUDA,
            float32 on the CPU; ``"bf16"`` / ``"fp16"`` on any device; False = float32.
    """

    def __init__(self, model: MROVSegModel, *, inference: InferenceConfig | None = None,
                 attribute_table: TableInput = None, prompt_spec: PromptSpec = PromptSpec(),
                 cache: EmbeddingCache | None = EmbeddingCache(), amp: Amp = True) -> None:
        self.model = model.eval()
        self.inference = inference or InferenceConfig()
        self.amp = amp
        self.text = TextEmbedder(model.clip, spec=prompt_spec, combination=model.config.prompt_pooling,
                                 attribute_table=attribute_table, cache=cache)

    @property
    def device(self) -> torch.device:
        return next(self.model.decoder.parameters()).device

    def settings(self) -> dict[str, object]:
        """What decides this predictor's output: model config, inference protocol, prompts, table."""
        return {"model": asdict(self.model.config), "inference": asdict(self.inference), **self.prompt_settings(),
                "amp": self.amp}

    def protocol(self, vocabulary: VocabularyInput) -> dict[str, object]:
        """What decides the output for ``vocabulary`` (JSON-ready): settings, prompts and attribute table,
        class list, resizes, slices, precision, device and the class rejection rule
        (the kept classes of each image are in its result)."""
        vocab = as_vocabulary(vocabulary)
        text = self.text_embeddings(vocab)
        cfg, model = self.inference, self.model
        return {
            "method": "mrovseg",
            "settings": self.settings(),
            "prompts": prompts_record(text, cfg.class_list, vocab),
            "resize": {
                "library": f"torch {torch.__version__}",
                "input": f"F.interpolate bilinear, antialiased when shrinking: short side {cfg.short_side}, long "
                         f"side <= {cfg.max_long_side}, at least one slice, sides multiples of {model.patch}",
                "output": "F.interpolate bilinear (align_corners False) of the mask logits to the working size, "
                          "then to the image size, then the scores (Mask2Former's order)"
                          if cfg.upsample == "masks" else
                          "scores at the masks' stride 4, then F.interpolate bilinear (align_corners False) to the "
                          "image size",
            },
            "slices": {"size": model.config.slice_size, "stride": model.slice_stride,
                       "used": model.config.use_slices},
            "precision": {"parameters": str(next(model.parameters()).dtype),
                          "autocast": str(autocast_dtype(self.device, self.amp) or "none"),
                          "published": "not stated (MROVSeg has no public code)"},
            "device": str(self.device),
            "rejection": rejection_record(cfg, cfg.clip_temperature),
        }

    def text_embeddings(self, vocabulary: VocabularyInput) -> ClassEmbeddings:
        """The prompt embeddings of ``vocabulary`` (``embeddings``: ``(N, P, D)``) on the model's
        device, with CAT-Seg's published names for a preset's benchmark (memoised, cached)."""
        vocab = as_vocabulary(vocabulary)
        return self.text(vocab, queries=published_queries(self.inference.class_list, vocab), device=self.device)

    def working_size(self, height: int, width: int) -> tuple[int, int]:
        """The working resolution of an image of ``height x width`` pixels (step 1)."""
        cfg, s, p = self.inference, self.model.config.slice_size, self.model.patch
        scale = 1.0 if cfg.short_side is None else cfg.short_side / min(height, width)
        if max(height, width) * scale > cfg.max_long_side:
            scale = cfg.max_long_side / max(height, width)
        scale = max(scale, s / min(height, width))
        return tuple(max(s, int(round(v * scale / p)) * p) for v in (height, width))  # type: ignore[return-value]

    @torch.no_grad()
    def _reduce(self, image: ImageInput, vocabulary: VocabularyInput, *, keep_scores: bool
                ) -> tuple[LabelReduction, torch.Tensor | None]:
        """Steps 1-4 (module docstring), chunk of classes by chunk of classes, into a
        :class:`LabelReduction` at the image's size; also the kept classes (None: all)."""
        vocab = as_vocabulary(vocabulary)
        rgb = as_rgb_array(image)
        h0, w0 = rgb.shape[:2]
        if h0 * w0 > self.inference.max_pixels:
            raise LmsegError(f"the image is {w0}x{h0} pixels; this predictor accepts at most "
                             f"{self.inference.max_pixels:,} (InferenceConfig.max_pixels): downscale it first")
        text = self.text_embeddings(vocab).embeddings
        pixels = torch.from_numpy(rgb if rgb.flags.writeable else rgb.copy())
        x = pixels.to(self.device).permute(2, 0, 1)[None].float() / 255.0
        h, w = self.working_size(h0, w0)
        if (h, w) != (h0, w0):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=(h < h0 or w < w0))
        cfg = self.inference
        rejects, ensemble = cfg.rejects(len(vocab)), cfg.clip_ensemble
        with autocast(x.device, self.amp):
            features = self.model.encode(x, dense=ensemble > 0 or rejects)
        dense = None if features.clip_dense is None else features.clip_dense[0].flatten(1)  # (D, h*w)
        kept = None
        if rejects:
            scores = candidate_scores(dense.T, class_rows(text), cfg.clip_temperature, budget=cfg.chunk_elements)
            kept = select_candidates(scores, cfg.max_classes)
            text = text[kept]
        classes = torch.arange(len(vocab), device=x.device) if kept is None else kept
        with autocast(x.device, self.amp):
            pred = self.model.decode(features, text)[-1]
        masks = pred.mask_logits.float()
        sizes = ((h, w), (h0, w0)) if cfg.upsample == "masks" else ()
        chunks = class_chunks(len(classes), max(h0 * w0, masks.shape[-2] * masks.shape[-1]), cfg.chunk_elements)
        rows = class_rows(text)
        zero_shot = None if ensemble == 0 else chunked_softmax(
            lambda c: cfg.clip_temperature * (F.normalize(rows[c], dim=-1) @ F.normalize(dense.float(), dim=0)), chunks)
        reduction = LabelReduction(len(vocab), (h0, w0), device=x.device, keep_scores=keep_scores)
        for chunk in chunks:
            scores = mask_weighted_scores(pred.class_logits, masks, sizes, classes=chunk)[0]
            if zero_shot is not None:
                _, clip = next(zero_shot)
                clip = F.interpolate(clip.view(1, -1, *features.clip_dense.shape[-2:]), size=scores.shape[-2:],
                                     mode="bilinear", align_corners=False)[0]
                scores = (1.0 - ensemble) * scores + ensemble * clip
            if tuple(scores.shape[-2:]) != (h0, w0):
                scores = F.interpolate(scores[None], size=(h0, w0), mode="bilinear", align_corners=False)[0]
            reduction.add(classes[chunk], scores.clamp_(0.0, 1.0))
        return reduction, kept


__all__ = ["MROVSegPredictor"]
