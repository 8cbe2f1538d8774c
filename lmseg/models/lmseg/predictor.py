"""The LMSeg predictor: image + vocabulary -> label map and per-class scores (``Segmenter``).

Test protocol (CAT-Seg's, which LMSeg follows), all fields of :class:`InferenceConfig`:

1. keep-ratio resize so the short side is 640 (long side capped at 2560; sizes rounded as
   detectron2's ``ResizeShortestEdge``), bilinear (torch with antialiasing, or PIL on uint8
   with ``pil_resize``); with ``square`` the windows come from that image resized to a
   square, otherwise an image whose short side would be below the window is enlarged to it;
2. sliding ``384 x 384`` windows with overlap 1/3 (stride 256), the last window of each axis
   flush with the border; plus one global view, the keep-ratio image resized to ``384 x 384``;
   a view whose side is not the model's ``input_size`` is resized to it (CAT-Seg's ViT-L/14);
3. the model's logits of each view are upsampled (bilinear) to the view's pixels, turned into
   per-class probabilities by a sigmoid; window probabilities are averaged where windows
   overlap, and that map is averaged with the global view's (equal weights);
4. the result is resized to the input image's size: ``scores`` ``(N, H, W)`` in [0, 1];
   the label map is their argmax.

Large vocabularies (:mod:`lmseg.inference.classes`): with ``max_classes = K`` the backbones
run first on every view, CLIP's dense tokens of all views pick K candidate classes, and only
those go through the head (the others score 0). Steps 2-4 run chunk of classes by chunk of
classes (``chunk_elements``), each chunk reduced into the label map at once, so no tensor holds
every class: the class attention of a chunk still sees the whole vocabulary through sums
computed chunk by chunk (:meth:`LMSegHead.class_statistics`).

The benchmark presets (:mod:`lmseg.models.presets`) set CAT-Seg's exact protocol: PIL
resize, 640 x 640 square, and CAT-Seg's published class names.

Text embeddings come from :class:`lmseg.text.embedder.TextEmbedder` (template + attribute
channels from an optional attribute table, cached on disk and memoised).
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import PIL
import torch
import torch.nn.functional as F
from PIL import Image

from lmseg.inference.classes import (
    LabelReduction,
    ReducingPredictor,
    candidate_scores,
    class_chunks,
    class_rows,
    rejection_record,
    select_candidates,
)
from lmseg.inference.image_input import ImageInput, ImageLimits, as_rgb_array
from lmseg.inference.precision import Amp, autocast, autocast_dtype
from lmseg.inference.segmenter import VocabularyInput, as_vocabulary
from lmseg.inference.tiler import Stitcher, batch_ranges, window_grid
from lmseg.models.lmseg.aggregation import LinearStats
from lmseg.models.lmseg.config import InferenceConfig
from lmseg.models.lmseg.model import HeadInputs, LMSegModel
from lmseg.models.presets import CATSEG_PRECISION, prompts_record, published_queries
from lmseg.text.cache import EmbeddingCache
from lmseg.text.embedder import AttributeTableOption, ClassEmbeddings, TextEmbedder
from lmseg.text.prompts import PromptSpec
from lmseg.text.table import TableInput

#: Temperature of class early rejection: CLIP's logit scale (LMSeg's joint space is CLIP's).
CANDIDATE_TEMPERATURE = 100.0


class LMSegPredictor(AttributeTableOption, ReducingPredictor):
    """A :class:`~lmseg.inference.Segmenter` around an :class:`LMSegModel`.

    Its scores (``logits``, ``scores_tensor``, ``predict(..., return_scores=True)``) are per-class
    probabilities: the sigmoid of LMSeg's logits, averaged over windows and the global view.

    Args:
        model: the network (its device is used).
        inference: the test protocol.
        attribute_table: a stage-1 Parquet table of the vocabulary's classes, a mapping class
            index -> row, or None (template prompts only); see :mod:`lmseg.text.table`.
        prompt_spec: sentence templates.
        cache: the embedding cache (default: under ``lmseg.paths.cache_dir()``); None disables it.
        amp: the autocast rule (:mod:`lmseg.inference.precision`): True = bfloat16 on CUDA,
            float32 on the CPU; ``"bf16"`` / ``"fp16"`` on any device; False = float32.
    """

    def __init__(
        self,
        model: LMSegModel,
        *,
        inference: InferenceConfig | None = None,
        attribute_table: TableInput = None,
        prompt_spec: PromptSpec = PromptSpec(),
        cache: EmbeddingCache | None = EmbeddingCache(),
        amp: Amp = True,
    ) -> None:
        self.model = model.eval()
        self.inference = inference or InferenceConfig()
        self.text = TextEmbedder(model.clip, spec=prompt_spec, combination=model.config.prompt_pooling,
                                 attribute_table=attribute_table, cache=cache)
        self.amp = amp
        self.inference.check_window(model.config.input_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.head.parameters()).device

    def settings(self) -> dict[str, object]:
        """What decides this predictor's output, for reports: model config, inference
        protocol (resize, window, overlap, global view), prompts and attribute table."""
        return {"model": asdict(self.model.config), "inference": asdict(self.inference), **self.prompt_settings(),
                "amp": self.amp}

    def protocol(self, vocabulary: VocabularyInput) -> dict[str, object]:
        """What decides the output for ``vocabulary``: settings, prompts, resizes, windows, precision."""
        vocab = as_vocabulary(vocabulary)
        text = self.text_embeddings(vocab)
        cfg = self.inference
        return {
            "method": "lmseg",
            "settings": self.settings(),
            "prompts": prompts_record(text, cfg.class_list, vocab),
            "resize": self._resize_record(),
            "windows": {"size": self.window, "stride": max(1, int(self.window * (1.0 - cfg.overlap))),
                        "global_view": cfg.global_view},
            "precision": {
                "parameters": str(next(self.model.parameters()).dtype),
                "autocast": str(autocast_dtype(self.device, self.amp) or "none"),
                "published": CATSEG_PRECISION,
            },
            "rejection": rejection_record(self.inference, CANDIDATE_TEMPERATURE),
            "device": str(self.device),
        }

    def _resize_record(self) -> dict[str, str]:
        """How each resize of the protocol is done, for :meth:`protocol`."""
        cfg = self.inference
        keep_ratio = "PIL bilinear on uint8" if cfg.pil_resize else \
            "F.interpolate bilinear on [0, 1] floats, antialiased when shrinking"
        return {
            "library": f"PIL {PIL.__version__}, torch {torch.__version__}" if cfg.pil_resize
                       else f"torch {torch.__version__}",
            "input": f"{keep_ratio}: short side {cfg.short_side}, long side <= {cfg.max_long_side} "
                     "(detectron2 rounding)" + ("" if cfg.square else ", short side >= the window"),
            "windows_from": "the keep-ratio image" if cfg.square is None
                            else f"F.interpolate bilinear to {cfg.square} x {cfg.square}",
            "views": f"F.interpolate bilinear to the model input {self.model.config.input_size}"
                     if self.window != self.model.config.input_size else "model input as cut",
            "output": "F.interpolate bilinear (align_corners False) to the image size",
        }

    @property
    def image_limits(self) -> ImageLimits:
        """The images this predictor accepts (checked before decoding)."""
        cfg = self.inference
        return ImageLimits(cfg.max_pixels, cfg.max_aspect_ratio, "InferenceConfig.max_pixels / max_aspect_ratio, "
                           "--set inference.max_pixels=N / inference.max_aspect_ratio=R")

    @property
    def window(self) -> int:
        return self.inference.window or self.model.config.input_size

    # ---- text -------------------------------------------------------------------------

    def text_embeddings(self, vocabulary: VocabularyInput) -> ClassEmbeddings:
        """The prompt embeddings of ``vocabulary`` (``embeddings``: ``(N, P, D)``) on the model's
        device, with the published names of ``class_list`` for its benchmark (memoised, cached)."""
        vocab = as_vocabulary(vocabulary)
        return self.text(vocab, queries=published_queries(self.inference.class_list, vocab), device=self.device)

    # ---- image ------------------------------------------------------------------------

    def resized_size(self, height: int, width: int) -> tuple[int, int]:
        """The keep-ratio size of step 1: detectron2's ``ResizeShortestEdge.get_output_shape``
        arithmetic, then (unless the windows come from a ``square``) the short side raised to
        one window."""
        cfg = self.inference
        h, w = float(height), float(width)
        if cfg.short_side is not None:
            scale = cfg.short_side / min(h, w)
            h, w = (cfg.short_side, scale * w) if h < w else (scale * h, cfg.short_side)
        if max(h, w) > cfg.max_long_side:
            h, w = h * cfg.max_long_side / max(h, w), w * cfg.max_long_side / max(h, w)
        if cfg.square is not None:
            return int(h + 0.5), int(w + 0.5)
        if min(h, w) < self.window:
            h, w = h * self.window / min(h, w), w * self.window / min(h, w)
        return max(self.window, int(h + 0.5)), max(self.window, int(w + 0.5))

    def _resized(self, rgb: np.ndarray) -> torch.Tensor:
        """``(1, 3, h, w)`` floats in [0, 1] on the device: ``rgb`` ``(H, W, 3)`` uint8 at :meth:`resized_size`."""
        h0, w0 = rgb.shape[:2]
        h, w = self.resized_size(h0, w0)
        if self.inference.pil_resize and (h, w) != (h0, w0):
            rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))
        pixels = torch.from_numpy(rgb if rgb.flags.writeable else rgb.copy())
        x = pixels.to(self.device).permute(2, 0, 1)[None].float() / 255.0
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=(h < h0 or w < w0))
        return x

    def _encode(self, views: list[torch.Tensor]) -> tuple[list[HeadInputs], torch.Tensor]:
        """The text-independent part of every view ``(1, 3, S, S)``: the head's inputs, one per
        view, and CLIP's dense tokens of all views ``(views * h * w, D)`` (for class rejection)."""
        size = self.model.config.input_size
        inputs: list[HeadInputs] = []
        tokens = []
        for batch in batch_ranges(len(views), self.inference.batch_size):
            x = torch.cat(views[batch])
            if x.shape[-1] != size:
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            with autocast(x.device, self.amp):
                feats = self.model.encode(x)
                prepared = self.model.head.prepare(feats.clip_dense, feats.sam, feats.guidance)
            inputs.extend(prepared.view(i) for i in range(x.shape[0]))
            tokens.append(feats.clip_dense.float().flatten(2).transpose(1, 2).reshape(-1, feats.clip_dense.shape[1]))
        return inputs, torch.cat(tokens)

    def _candidates(self, tokens: torch.Tensor, text: torch.Tensor) -> torch.Tensor | None:
        """The kept classes (ascending indices), or None when rejection removes none."""
        if not self.inference.rejects(text.shape[0]):
            return None
        scores = candidate_scores(tokens, class_rows(text), CANDIDATE_TEMPERATURE, budget=self.inference.chunk_elements)
        return select_candidates(scores, self.inference.max_classes)

    def _probabilities(self, view: HeadInputs, text: torch.Tensor, stats: list[LinearStats] | None,
                       side: int) -> torch.Tensor:
        """``(n, side, side)`` probabilities of one view for the classes of ``text`` (a chunk)."""
        with autocast(self.device, self.amp):
            logits = self.model.head.decode(view, text, stats)
        return F.interpolate(logits.float(), size=(side, side), mode="bilinear", align_corners=False)[0].sigmoid_()

    @torch.no_grad()
    def _reduce(self, image: ImageInput, vocabulary: VocabularyInput, *, keep_scores: bool
                ) -> tuple[LabelReduction, torch.Tensor | None]:
        """Run the protocol (module docstring) chunk of classes by chunk of classes into a
        :class:`LabelReduction` at the image's size; also the kept classes (None: all)."""
        rgb = as_rgb_array(image, self.image_limits)
        h0, w0 = rgb.shape[:2]
        text = self.text_embeddings(vocabulary).embeddings
        x = self._resized(rgb)
        s, square = self.window, self.inference.square
        tiled = x if square is None else F.interpolate(x, size=(square, square), mode="bilinear", align_corners=False)
        h, w = tiled.shape[-2:]
        stride = max(1, int(s * (1.0 - self.inference.overlap)))
        boxes = window_grid(h, w, s, stride)
        views = [tiled[:, :, y1:y2, x1:x2] for y1, x1, y2, x2 in boxes]
        if self.inference.global_view:
            views.append(x if x.shape[-2:] == (s, s) else F.interpolate(x, size=(s, s), mode="bilinear",
                                                                      align_corners=False))
        inputs, tokens = self._encode(views)
        num_classes = text.shape[0]
        kept = self._candidates(tokens, text)
        classes = torch.arange(text.shape[0], device=x.device) if kept is None else kept
        text = text if kept is None else text[kept]
        grid = self.model.clip.grid_for(self.model.config.input_size, self.model.config.input_size)
        per_class = max(self.model.head.elements_per_class(grid), h * w, h0 * w0, s * s)
        chunks = class_chunks(len(classes), per_class, self.inference.chunk_elements)
        stats = [self.model.head.class_statistics(v, text, chunks) if len(chunks) > 1 else None for v in inputs]
        reduction = LabelReduction(num_classes, (h0, w0), device=x.device, keep_scores=keep_scores)
        for chunk in chunks:
            stitcher = Stitcher(chunk.stop - chunk.start, (h, w), device=x.device)
            for box, view, view_stats in zip(boxes, inputs, stats):
                stitcher.add(self._probabilities(view, text[chunk], view_stats, s), box)
            out = stitcher.result()
            if self.inference.global_view:
                glob = self._probabilities(inputs[-1], text[chunk], stats[-1], s)
                if (h, w) != (s, s):
                    glob = F.interpolate(glob[None], size=(h, w), mode="bilinear", align_corners=False)[0]
                out = out.add_(glob).div_(2.0)
            if (h, w) != (h0, w0):
                out = F.interpolate(out[None], size=(h0, w0), mode="bilinear", align_corners=False)[0]
            reduction.add(classes[chunk], out)
        return reduction, kept
