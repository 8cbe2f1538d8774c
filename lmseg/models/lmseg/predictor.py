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

The benchmark presets (:mod:`lmseg.models.presets`) set CAT-Seg's exact protocol: PIL
resize, 640 x 640 square, and CAT-Seg's published class names.

Text embeddings come from :mod:`lmseg.text.prompts` (template + attribute channels from an
optional attribute table), cached on disk by :class:`lmseg.text.cache.EmbeddingCache`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path

import numpy as np
import PIL
import torch
import torch.nn.functional as F
from PIL import Image

from lmseg.inference.image_input import ImageInput, ImageLimits, as_rgb_array
from lmseg.inference.segmenter import Segmentation, VocabularyInput, as_vocabulary, segmentation_from_scores
from lmseg.inference.tiler import Stitcher, batch_ranges, window_grid
from lmseg.models.lmseg.config import InferenceConfig
from lmseg.models.lmseg.model import LMSegModel
from lmseg.models.presets import CATSEG_PRECISION, class_list_record, published_queries
from lmseg.text.cache import EmbeddingCache, cached_prompt_embeddings, clip_text_fingerprint, table_sha256
from lmseg.text.prompts import ClassPrompts, PromptSpec, build_prompts, encode_prompts
from lmseg.vocab import Vocabulary


class LMSegPredictor:
    """A :class:`~lmseg.inference.Segmenter` around an :class:`LMSegModel`.

    Args:
        model: the network (its device is used).
        inference: the test protocol.
        attribute_table: a stage-1 Parquet table whose ``dataset`` is the vocabulary's name, or
            a mapping class index -> row, or None (template prompts only).
        prompt_spec: sentence templates.
        cache: the embedding cache (default: under ``lmseg.paths.cache_dir()``); None disables it.
        amp: run the model under autocast (bfloat16) on CUDA.
    """

    def __init__(
        self,
        model: LMSegModel,
        *,
        inference: InferenceConfig | None = None,
        attribute_table: str | os.PathLike[str] | Mapping[int, object] | None = None,
        prompt_spec: PromptSpec = PromptSpec(),
        cache: EmbeddingCache | None = EmbeddingCache(),
        amp: bool = True,
    ) -> None:
        self.model = model.eval()
        self.inference = inference or InferenceConfig()
        self.attribute_table = attribute_table
        self.prompt_spec = prompt_spec
        self.cache = cache
        self.amp = amp
        self._text: dict[tuple[str, str], torch.Tensor] = {}
        self._weights_id: str | None = None
        self.inference.check_window(model.config.input_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.head.parameters()).device

    def settings(self) -> dict[str, object]:
        """What decides this predictor's output, for reports: model config, inference
        protocol (resize, window, overlap, global view), prompts and attribute table."""
        table = self.attribute_table
        if isinstance(table, Mapping):
            table = f"in-memory table of {len(table)} classes"
        return {
            "model": asdict(self.model.config),
            "inference": asdict(self.inference),
            "prompts": asdict(self.prompt_spec),
            "attribute_table": None if table is None else str(table),
            "amp": self.amp,
        }

    def protocol(self, vocabulary: VocabularyInput) -> dict[str, object]:
        """What decides the output for ``vocabulary``: settings, prompts, resizes, windows, precision."""
        vocab = as_vocabulary(vocabulary)
        attrs = self._attributes(vocab)
        prompts = self._prompts(vocab, attrs)
        cfg = self.inference
        return {
            "method": "lmseg",
            "settings": self.settings(),
            "prompts": {"sha256": prompts.content_sha256(), "attribute_table_sha256": table_sha256(attrs),
                        "class_list": class_list_record(cfg.class_list, vocab)},
            "resize": self._resize_record(),
            "windows": {"size": self.window, "stride": max(1, int(self.window * (1.0 - cfg.overlap))),
                        "global_view": cfg.global_view},
            "precision": {
                "parameters": str(next(self.model.parameters()).dtype),
                "autocast": "bfloat16 on CUDA" if self.amp else "none",
                "published": CATSEG_PRECISION,
            },
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

    def _attributes(self, vocabulary: Vocabulary) -> Mapping[int, object] | None:
        table = self.attribute_table
        if table is None or isinstance(table, Mapping):
            return table
        from lmseg.attributes.reader import load_attributes

        return load_attributes(vocabulary.name, "", path=Path(table))

    def _prompts(self, vocabulary: Vocabulary, attributes: Mapping[int, object] | None) -> ClassPrompts:
        """The sentences of every class; the published names of ``class_list`` for its benchmark."""
        queries = published_queries(self.inference.class_list, vocabulary)
        return build_prompts(vocabulary, attributes, spec=self.prompt_spec, pooling=self.model.config.prompt_pooling,
                             queries=queries)

    def text_embeddings(self, vocabulary: VocabularyInput) -> torch.Tensor:
        """``(N, P, D)`` prompt embeddings of ``vocabulary`` on the model's device (memoised, cached)."""
        vocab = as_vocabulary(vocabulary)
        attrs = self._attributes(vocab)
        prompts = self._prompts(vocab, attrs)
        memo = (prompts.content_sha256(), table_sha256(attrs))
        if memo not in self._text:
            clip = self.model.clip
            if self.cache is None:
                emb = encode_prompts(prompts, clip.encode_text)
            else:
                if self._weights_id is None:
                    self._weights_id = clip_text_fingerprint(clip.model)
                emb = cached_prompt_embeddings(prompts, attrs, clip, self.cache, weights_id=self._weights_id)
            self._text[memo] = emb.to(self.device)
        return self._text[memo]

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

    def _views_per_batch(self, num_classes: int) -> int:
        return max(1, min(self.inference.batch_size, self.inference.max_class_maps // max(1, num_classes)))

    def _forward(self, views: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(B, N, S, S)`` for a batch of views ``(B, 3, S, S)`` (resized to the
        model's input size and back)."""
        use_amp = self.amp and views.device.type == "cuda"
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else nullcontext()
        chunk = max(1, self.inference.max_class_maps // views.shape[0])
        size = self.model.config.input_size
        inputs = views if views.shape[-1] == size else F.interpolate(views, size=(size, size), mode="bilinear",
                                                                     align_corners=False)
        with ctx:
            logits = self.model(inputs, text, class_chunk=chunk)
        logits = F.interpolate(logits.float(), size=views.shape[-2:], mode="bilinear", align_corners=False)
        return logits.sigmoid_()

    @torch.no_grad()
    def scores_tensor(self, image: ImageInput, vocabulary: VocabularyInput) -> torch.Tensor:
        """``(N, H, W)`` float32 per-class probabilities at the image's resolution (a tensor on the device)."""
        rgb = as_rgb_array(image, self.image_limits)
        h0, w0 = rgb.shape[:2]
        text = self.text_embeddings(vocabulary)
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
        stitcher = Stitcher(text.shape[0], (h, w), device=x.device)
        glob = None
        for batch in batch_ranges(len(views), self._views_per_batch(text.shape[0])):
            probs = self._forward(torch.cat(views[batch]), text)  # accumulated batch by batch
            for j, p in enumerate(probs, start=batch.start):
                if j < len(boxes):
                    stitcher.add(p, boxes[j])
                else:
                    glob = p
            del probs
        out = stitcher.result()
        if glob is not None:
            if (h, w) != (s, s):
                glob = F.interpolate(glob[None], size=(h, w), mode="bilinear", align_corners=False)[0]
            out = out.add_(glob).div_(2.0)
        if (h, w) != (h0, w0):
            out = F.interpolate(out[None], size=(h0, w0), mode="bilinear", align_corners=False)[0]
        return out

    def logits(self, image: ImageInput, vocabulary: VocabularyInput) -> np.ndarray:
        """``(N, H, W)`` float32 per-class probabilities (sigmoid of LMSeg's logits, averaged
        over windows and the global view) at the image's resolution, before argmax."""
        return self.scores_tensor(image, vocabulary).cpu().numpy().astype(np.float32, copy=False)

    def predict(self, image: ImageInput, vocabulary: VocabularyInput, *, return_scores: bool = False) -> Segmentation:
        """Segment one image into ``vocabulary`` (see the module docstring for the protocol)."""
        vocab = as_vocabulary(vocabulary)
        return segmentation_from_scores(self.scores_tensor(image, vocab), vocab, return_scores=return_scores)
