"""The MGCA predictor: image + vocabulary -> per-pixel scores, through a chosen prediction unit.

Protocol (all fields of :class:`~lmseg.models.mgca.config.InferenceConfig`):

1. keep-ratio resize so the short side is ``short_side`` (long side capped), both sides
   rounded to multiples of the patch size; one forward pass of the whole image;
2. per-patch class scores: softmax over the vocabulary of ``cos(patch, class) / temperature``
   (class embeddings: template ensembles of every name of the class, blended with the
   class's attribute sentences when a table is given, from
   :class:`lmseg.text.embedder.TextEmbedder`, cached on disk and memoised);
3. bilinear upsampling of the scores to the input image's size;
4. the prediction unit (:mod:`.units`): ``pixel``, ``region`` (SLIC superpixels or the model's
   groups) or ``adaptive`` (the abstract's adaptive semantic unit). The regions are found at
   the working resolution (the groups on the patch grid, SLIC on the resized image) and
   resized (nearest) to the image's size.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lmseg.errors import LmsegError
from lmseg.inference.image_input import ImageInput, as_rgb_array
from lmseg.inference.segmenter import Segmentation, VocabularyInput, as_vocabulary, segmentation_from_scores
from lmseg.models.mgca.config import InferenceConfig, RegionSource
from lmseg.models.mgca.model import MGCAModel
from lmseg.models.mgca.units import adaptive_unit, region_unit, resize_nearest, slic_regions
from lmseg.models.presets import prompts_record, published_queries
from lmseg.text.cache import EmbeddingCache
from lmseg.text.embedder import AttributeTableOption, ClassEmbeddings, TextEmbedder
from lmseg.text.prompts import PromptSpec
from lmseg.text.table import TableInput


class MGCAPredictor(AttributeTableOption):
    """A :class:`~lmseg.inference.Segmenter` around an :class:`MGCAModel`.

    Args:
        model: the network (its device is used).
        inference: the test protocol.
        cache: the text-embedding cache (default: under ``lmseg.paths.cache_dir()``); None
            disables it.
        attribute_table: a stage-1 attribute table of the vocabulary's classes (:mod:`lmseg.text.table`):
            each class's template ensemble is blended with its attribute sentences
            (``inference.attribute_weight``); None: templates only.
    """

    def __init__(self, model: MGCAModel, *, inference: InferenceConfig | None = None,
                 cache: EmbeddingCache | None = EmbeddingCache(), attribute_table: TableInput = None) -> None:
        self.model = model.eval()
        self.inference = inference or InferenceConfig()
        self.text = TextEmbedder(model.clip, spec=PromptSpec(imagenet_templates=self.inference.prompt_templates),
                                 combination="blend", attribute_weight=self.inference.attribute_weight,
                                 attribute_table=attribute_table, cache=cache)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def settings(self) -> dict[str, Any]:
        """Everything that decides the output, for reports: model config, protocol, prompts,
        attribute table."""
        return {"model": self.model.config.to_dict(), "inference": asdict(self.inference), **self.prompt_settings()}

    def protocol(self, vocabulary: VocabularyInput) -> dict[str, object]:
        """What decides the output for ``vocabulary`` (JSON-ready): settings (the unit among
        them), prompts and attribute table, class list, resizes, precision, device."""
        vocab = as_vocabulary(vocabulary)
        text = self.text_embeddings(vocab)
        cfg = self.inference
        return {
            "method": "mgca",
            "settings": self.settings(),
            "prompts": prompts_record(text, cfg.class_list, vocab),
            "resize": {
                "library": f"torch {torch.__version__}",
                "input": f"F.interpolate bilinear, antialiased when shrinking: short side {cfg.short_side}, long side "
                         f"<= {cfg.max_long_side}, sides rounded to multiples of {self.model.clip.patch_size[0]}",
                "output": "F.interpolate bilinear (align_corners False) of the patch scores to the image size",
            },
            "precision": {"parameters": str(next(self.model.parameters()).dtype),
                          "published": "not stated (MGCA has no public code)"},
            "device": str(self.device),
        }

    def text_embeddings(self, vocabulary: VocabularyInput) -> ClassEmbeddings:
        """The class embeddings of ``vocabulary`` (``embeddings``: ``(N, 1, D)``) on the model's
        device, with the published names of ``class_list`` for its benchmark (memoised, cached)."""
        vocab = as_vocabulary(vocabulary)
        return self.text(vocab, queries=published_queries(self.inference.class_list, vocab), device=self.device)

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """The model input size for an image of ``height`` x ``width`` (multiples of the patch)."""
        cfg = self.inference
        scale = cfg.short_side / min(height, width)
        scale = min(scale, cfg.max_long_side / max(height, width))
        patch = self.model.clip.patch_size[0]
        return (max(patch, round(height * scale / patch) * patch), max(patch, round(width * scale / patch) * patch))

    @torch.no_grad()
    def pixel_scores(self, rgb: np.ndarray, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pixel scores ``(N, H, W)`` and the group map ``(H, W)`` int64 of an RGB image and
        ``(N, D)`` L2-normalised class embeddings."""
        h0, w0 = rgb.shape[:2]
        pixels = torch.from_numpy(rgb if rgb.flags.writeable else rgb.copy()).to(self.device)
        x = pixels.permute(2, 0, 1)[None].float().div_(255.0)  # one float copy of a large image, not two
        h, w = self.resized_size(h0, w0)
        x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=(h < h0 or w < w0))
        patches, _, grid = self.model.dense(x)
        logits = patches[0].float() @ text.t() / self.inference.temperature  # (h*w, N)
        probs = logits.softmax(dim=-1).t().reshape(-1, *grid)
        scores = F.interpolate(probs[None], size=(h0, w0), mode="bilinear", align_corners=False)[0]
        groups = self.model.assignment(patches).argmax(dim=-1).reshape(*grid)
        return scores, resize_nearest(torch.unique(groups, return_inverse=True)[1], (h0, w0))

    def superpixels(self, rgb: np.ndarray) -> torch.Tensor:
        """``(H, W)`` int64 SLIC superpixel ids of an ``(H, W, 3)`` uint8 image, on the device.

        SLIC runs on the image at the model's working resolution (:meth:`resized_size`; OpenCV,
        area-averaged when shrinking), where ``slic_segments`` is meant, and its map is resized
        (nearest) to the image's size: SLIC's time and memory are those of a working-size image
        however large the image is (at full resolution a 40-megapixel image took minutes and
        gigabytes).
        """
        import cv2

        h0, w0 = rgb.shape[:2]
        h, w = self.resized_size(h0, w0)
        small = rgb if (h, w) == (h0, w0) else cv2.resize(
            np.ascontiguousarray(rgb), (w, h), interpolation=cv2.INTER_AREA if h * w < h0 * w0 else cv2.INTER_LINEAR)
        cfg = self.inference
        labels = torch.from_numpy(slic_regions(small, cfg.slic_segments, cfg.slic_compactness)).to(self.device)
        return resize_nearest(labels, (h0, w0))

    def _regions(self, source: RegionSource, rgb: np.ndarray, groups: torch.Tensor) -> torch.Tensor:
        return groups if source == "groups" else self.superpixels(rgb)

    def scores_tensor(self, image: ImageInput, vocabulary: VocabularyInput) -> torch.Tensor:
        """``(N, H, W)`` float32 per-class scores after the prediction unit (on the device)."""
        rgb = as_rgb_array(image)
        if rgb.shape[0] * rgb.shape[1] > self.inference.max_pixels:
            raise LmsegError(f"the image is {rgb.shape[1]}x{rgb.shape[0]} pixels; this predictor accepts at most "
                             f"{self.inference.max_pixels:,} (InferenceConfig.max_pixels): downscale it first")
        scores, groups = self.pixel_scores(rgb, self.text_embeddings(vocabulary).embeddings[:, 0])
        cfg = self.inference
        if cfg.unit == "pixel":
            return scores
        if cfg.unit == "region":
            return region_unit(scores, self._regions(cfg.region_source, rgb, groups))
        levels = (self._regions(source, rgb, groups) for source in cfg.adaptive_levels)  # one map alive at a time
        return adaptive_unit(scores, levels, cfg.min_agreement)

    def logits(self, image: ImageInput, vocabulary: VocabularyInput) -> np.ndarray:
        """``(N, H, W)`` float32 per-class probabilities after the prediction unit, before argmax."""
        return self.scores_tensor(image, vocabulary).cpu().numpy().astype(np.float32, copy=False)

    def predict(self, image: ImageInput, vocabulary: VocabularyInput, *, return_scores: bool = False) -> Segmentation:
        """Segment one image into ``vocabulary`` (see the module docstring for the protocol)."""
        vocab = as_vocabulary(vocabulary)
        return segmentation_from_scores(self.scores_tensor(image, vocab), vocab, return_scores=return_scores)
