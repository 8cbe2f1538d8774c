"""The sam3 predictor: images and vocabularies in, label maps and scores out.

:class:`Sam3Predictor` implements :class:`lmseg.inference.Segmenter` around a
:class:`~lmseg.models.sam3.model.Sam3Semantic`. Per image:

* SAM 3's own preprocessing (``Sam3Processor``'s transform: resize to its square, mean = std
  = 0.5);
* the image encoded once, every prompt of the vocabulary (:mod:`.prompts`) grounded against it
  in batches, the evidence pooled per class (:mod:`.evidence`);
* class scores bilinear to the image size, the competition and background rule of
  :class:`~lmseg.models.sam3.config.Sam3Config`, the argmax.

The prompts' text encodings are memoised per vocabulary (they do not depend on the image).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict

import numpy as np
import torch

from lmseg.errors import LmsegError
from lmseg.inference import ImageInput, ImageLimits, Segmentation, VocabularyInput, as_rgb_array, as_vocabulary
from lmseg.models.presets import class_list_record, published_queries
from lmseg.models.sam3.config import Sam3Config
from lmseg.models.sam3.evidence import compete, labels_in_chunks, to_image
from lmseg.models.sam3.model import Sam3Semantic
from lmseg.models.sam3.prompts import Prompts, build_prompts
from lmseg.vocab import Vocabulary

#: The precision of SAM 3's released inference (its demo notebooks run the image model under
#: ``torch.autocast("cuda", dtype=torch.bfloat16)``); lmseg runs fp32 unless told otherwise.
SAM3_PRECISION = "the released notebooks: bfloat16 autocast on a GPU; Sam3Processor itself sets none (fp32)"


class Sam3Predictor:
    """Training-free semantic segmentation from SAM 3's text-prompted concept detector.

    Args:
        model: SAM 3 and the rule's settings (its ``config`` is used).
        device: where inputs go (the model must already be there).
        attribute_table: a stage-1 attribute table of the vocabulary's classes (a Parquet file,
            a mapping class index -> row, or None): up to ``config.attribute_prompts`` of each
            class's attribute phrases become extra prompts.
        variant: the variant's name (for records).
    """

    def __init__(self, model: Sam3Semantic, *, device: str | torch.device = "cpu", attribute_table: object = None,
                 variant: str = "") -> None:
        self.model = model.eval()
        self.device = torch.device(device)
        self.variant = variant
        self.attribute_table = None
        if attribute_table is not None:  # TEMPORARY until the text branch lands
            from lmseg.text.table import open_attribute_table

            self.attribute_table = open_attribute_table(attribute_table)
        self._text: dict[tuple, tuple[Prompts, dict[str, torch.Tensor]]] = {}

    @property
    def config(self) -> Sam3Config:
        """The rule's settings."""
        return self.model.config

    def settings(self) -> dict[str, object]:
        """What decides the output: every field of :class:`Sam3Config`, SAM 3's input size, the
        attribute table."""
        table = self.attribute_table
        return {**asdict(self.config), "image_size": self.model.img_size,
                "attribute_table": None if table is None else table.source}

    @property
    def image_limits(self) -> ImageLimits:
        """The images this segmenter accepts (checked before decoding)."""
        cfg = self.config
        return ImageLimits(cfg.max_pixels, cfg.max_aspect_ratio,
                           "Sam3Config.max_pixels / max_aspect_ratio, --set config.max_pixels=N")

    # ---- prompts -------------------------------------------------------------------------

    def prompts(self, vocabulary: VocabularyInput) -> tuple[Vocabulary, Prompts]:
        """The vocabulary and its prompts (see :mod:`.prompts`)."""
        vocab = as_vocabulary(vocabulary)
        prompts, _ = self._encoded(vocab)
        return vocab, prompts

    def _encoded(self, vocab: Vocabulary) -> tuple[Prompts, dict[str, torch.Tensor]]:
        table = self.attribute_table
        key = (vocab.content_sha256(), None if table is None else table.sha256)
        if key not in self._text:
            rows = None if table is None else table.rows_for(vocab)
            prompts = build_prompts(vocab, self.config, published=published_queries(self.config.class_list, vocab),
                                    attributes=rows)
            self._text[key] = (prompts, self.model.encode_text(prompts))
        return self._text[key]

    def protocol(self, vocabulary: VocabularyInput) -> dict[str, object]:
        """What decides the output for ``vocabulary``: settings, prompts, resize, precision (JSON-ready)."""
        vocab = as_vocabulary(vocabulary)
        prompts, _ = self._encoded(vocab)
        table = self.attribute_table
        listing = "\n".join(f"{c}\t{t}" for t, c in zip(prompts.texts, prompts.classes))
        detector = self.model.detector
        return {
            "method": "sam3",
            "variant": self.variant,
            "settings": self.settings(),
            "prompts": {
                "class_list": class_list_record(self.config.class_list, vocab),
                "num_prompts": len(prompts.texts),
                "sha256": hashlib.sha256(listing.encode()).hexdigest(),
                "attribute_table_sha256": None if table is None else table.sha256,
            },
            "resize": {
                "sam3": f"Sam3Processor transform: torchvision v2 Resize of the uint8 image to {self.model.img_size} x "
                        f"{self.model.img_size} (aspect ratio not kept), mean = std = 0.5",
                "output": "torch bilinear (align_corners False) of the class scores to the image size",
            },
            "precision": {"sam3": str(next(detector.parameters()).dtype), "published": SAM3_PRECISION},
            "device": str(self.device),
        }

    # ---- images --------------------------------------------------------------------------

    @torch.no_grad()
    def _class_maps(self, rgb: np.ndarray, vocab: Vocabulary) -> torch.Tensor:
        prompts, text = self._encoded(vocab)
        canvas = self.model.detector.preprocess(rgb)
        return self.model(canvas, text, prompts)

    def logits(self, image: ImageInput, vocabulary: VocabularyInput) -> np.ndarray:
        """``(N, H, W)`` float32 class scores in [0, 1] at the image's resolution (after the
        competition, before the background rule and argmax)."""
        rgb = as_rgb_array(image, self.image_limits)
        vocab = as_vocabulary(vocabulary)
        maps = self._class_maps(rgb, vocab)
        return compete(to_image(maps, rgb.shape[:2]), self.config).float().cpu().numpy()

    def predict(self, image: ImageInput, vocabulary: VocabularyInput, *, return_scores: bool = False) -> Segmentation:
        """Segment one image (path, PIL or array) into the classes of ``vocabulary``."""
        rgb = as_rgb_array(image, self.image_limits)
        vocab = as_vocabulary(vocabulary)
        if self.config.background_threshold > 0 and self.config.background_index >= len(vocab):
            raise LmsegError(f"background_index {self.config.background_index} is outside the vocabulary of "
                             f"{len(vocab)} classes")
        maps = self._class_maps(rgb, vocab)
        labels = labels_in_chunks(maps, rgb.shape[:2], self.config)
        scores = compete(to_image(maps, rgb.shape[:2]), self.config).float().cpu().numpy() if return_scores else None
        return Segmentation(label_map=labels.cpu().numpy().astype(np.int32), class_names=tuple(vocab.names),
                            scores=scores)
