"""Typed, frozen configurations of the LMSeg model and its predictor, and the named presets.

``LMSEG_CONFIGS`` maps a name (``lmseg_vitb16``, ``lmseg_vitl14``, ``lmseg_tiny``) to an
:class:`LMSegConfig`. Code never passes raw dicts: YAML/JSON overlays go through
:func:`config_from_dict`, which rejects unknown keys.

Choices for the points the LMSeg paper (Tang et al., 2024) leaves open (each is a field, so it can be changed):

* ``prompt_pooling``: ``"channels"`` (default) keeps P prompt channels per class in the cost
  volume (template, colour, shape, texture); ``"mean"`` averages them into one embedding (P=1).
* SAM to CLIP's grid and width: a 1x1 convolution (256 -> D, the joint-space width) on the
  valid SAM token grid, then a bilinear resize to CLIP's token grid (``sam_projection``).
* The fusion weight is ``w = sigmoid(fusion_logit)`` so it stays in (0, 1); it starts at
  ``fusion_init`` (0.5: both sources equal).
* SAM runs on each model input (each 384 crop/window, resized by SAM to its 1024 canvas), so
  training and inference see SAM at the same scale.
* Only the image tower's attention (``in_proj``/``out_proj`` of every block) is fine-tuned;
  the text tower stays frozen so that class embeddings can be computed once and cached.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from lmseg.errors import LmsegError
from lmseg.inference.classes import ClassBudget
from lmseg.models import building
from lmseg.text.prompts import Pooling
from lmseg.vocab.class_lists import get_class_list_source


@dataclass(frozen=True)
class LMSegConfig(building.ConfigData):
    """Architecture of an LMSeg model (weights are separate).

    Attributes:
        name: the preset name (recorded in checkpoints).
        clip_model: open_clip model name of the CLIP backbone.
        clip_quick_gelu: MLP activation of the CLIP weights (OpenAI CLIP: True).
        input_size: side of the square model input in pixels (training crop and inference
            window): 384 for ViT-B/16 (24x24 tokens), 336 for ViT-L/14 (24x24 tokens).
        sam_model: the SAM side: ``vit_b``/``vit_l``/``vit_h`` (segment-anything registry),
            SAM 2.1 (``sam2.1_hiera_tiny`` ... ``sam2.1_hiera_large``: its ``image_embed``,
            256 channels at 1/16 of its square input) or SAM 3's image encoder (``sam3``: its
            ``vision_features``, 256 channels at 1/14), or a reduced random encoder for tests
            (``tiny``: SAM; ``sam2.1_test_tiny``; ``sam3_test_tiny``).
        sam_tiny_size: canvas side of the ``tiny`` SAM (ignored otherwise).
        sam_image_size: the square input side of a SAM 2.1 or SAM 3 side (0: the model's own,
            1024 / 1008; the test encoders 256 / 224). SAM 1 always uses its 1024 canvas.
        prompt_pooling: ``"channels"`` (P prompt channels) or ``"mean"`` (one averaged prompt).
        num_prompts: P, the prompt channels per class the text side provides in ``channels``
            mode (template + colour + shape + texture = 4).
        hidden_dim: width of the embedded cost volume (128).
        num_layers: aggregation layers L (2).
        window_size: Swin-style spatial window, in tokens (12).
        num_heads: heads of the spatial window attention.
        class_heads: heads of the linear class attention.
        text_guidance_dim: width of the text guidance added to the class step.
        appearance_guidance_dim: width of the appearance guidance added to the spatial step.
        cost_embed_kernel: kernel of the convolution embedding the P cost channels.
        decoder_layers: CLIP blocks (0-based) whose outputs guide the decoder, coarse to fine
            (each decoder stage upsamples x2 and uses one of them).
        decoder_dims: widths of the decoder stages (one per entry of ``decoder_layers``).
        decoder_guidance_dims: widths the guidance features are projected to before being
            concatenated to every class map (small, as in CAT-Seg: 32 and 16).
        fusion_init: initial value of the fusion weight w (0..1, exclusive).
        finetune_clip_attention: train the image tower's attention projections (0.01x lr).
    """

    name: str = "lmseg_vitb16"
    clip_model: str = "ViT-B-16"
    clip_quick_gelu: bool = True
    input_size: int = 384
    sam_model: str = "vit_b"
    sam_tiny_size: int = 128
    sam_image_size: int = 0
    prompt_pooling: Pooling = "channels"
    num_prompts: int = 4
    hidden_dim: int = 128
    num_layers: int = 2
    window_size: int = 12
    num_heads: int = 4
    class_heads: int = 4
    text_guidance_dim: int = 128
    appearance_guidance_dim: int = 128
    cost_embed_kernel: int = 7
    decoder_layers: tuple[int, ...] = (7, 3)
    decoder_dims: tuple[int, ...] = (64, 32)
    decoder_guidance_dims: tuple[int, ...] = (32, 16)
    fusion_init: float = 0.5
    finetune_clip_attention: bool = True

    def __post_init__(self) -> None:
        if self.prompt_pooling not in ("channels", "mean"):
            raise LmsegError(f"prompt_pooling must be 'channels' or 'mean', got {self.prompt_pooling!r}")
        if not 0.0 < self.fusion_init < 1.0:
            raise LmsegError(f"fusion_init must be in (0, 1), got {self.fusion_init}")
        if not (len(self.decoder_layers) == len(self.decoder_dims) == len(self.decoder_guidance_dims)):
            raise LmsegError("decoder_layers, decoder_dims and decoder_guidance_dims must have the same length")
        if self.hidden_dim % self.num_heads or self.hidden_dim % self.class_heads:
            raise LmsegError("hidden_dim must be divisible by num_heads and class_heads")
        for name in ("input_size", "hidden_dim", "num_layers", "window_size", "num_prompts"):
            if getattr(self, name) <= 0:
                raise LmsegError(f"{name} must be positive")
        if self.sam_image_size < 0:
            raise LmsegError(f"sam_image_size must be 0 (the model's own) or positive, got {self.sam_image_size}")

    @property
    def prompt_channels(self) -> int:
        """P as seen by the cost volume (1 when prompts are averaged)."""
        return self.num_prompts if self.prompt_pooling == "channels" else 1


@dataclass(frozen=True)
class InferenceConfig(ClassBudget):
    """How the predictor runs the model over an image (CAT-Seg's test protocol by default).

    Attributes:
        max_classes: class early rejection, K candidate classes per image (0: off; the rule
            in :mod:`lmseg.inference.classes`).
        chunk_elements: bound on the elements of any class-dependent tensor of one chunk of
            classes (aggregation, decoder, stitching, upsampling), which bounds memory for
            large vocabularies. Results do not depend on it beyond floating-point rounding.
        short_side: the image is resized (keeping its aspect ratio) so its short side is this
            many pixels (640); None keeps the image's size.
        max_long_side: the long side is capped at this (the short side then shrinks), so that
            extreme aspect ratios cannot explode the number of windows.
        window: sliding-window side (None: the model's ``input_size``).
        overlap: fraction of a window shared with its neighbour (1/3: stride 256 for 384).
        global_view: also run the whole image resized to one window, upsampled and averaged
            with the windows (CAT-Seg averages the two equally).
        batch_size: windows per pass through the backbones (at most).
        max_pixels: larger input images are refused (the scores alone are N x H x W floats).
        max_aspect_ratio: more elongated images are refused: the short side is enlarged to at
            least one window, so the long side (and memory) grows with the aspect ratio.
        pil_resize: do the keep-ratio resize with PIL's bilinear filter on the uint8 image, as
            detectron2's ``ResizeShortestEdge`` in CAT-Seg's test; False: torch bilinear on
            floats, antialiased when shrinking.
        square: take the windows from the image resized once more to ``square x square``
            (torch bilinear, as CAT-Seg's ``inference_sliding_window``: 640); the global view
            still comes from the keep-ratio image. None: windows over the keep-ratio image.
        class_list: id of a published class list (:mod:`lmseg.vocab.class_lists`, e.g.
            ``"catseg/ade150"``): when the vocabulary is that list's benchmark, the prompts
            use the list's names; any other vocabulary keeps its own. Set by the benchmark
            presets (:mod:`lmseg.models.presets`).
    """

    short_side: int | None = 640
    max_long_side: int = 2560
    window: int | None = None
    overlap: float = 1.0 / 3.0
    global_view: bool = True
    batch_size: int = 8
    max_pixels: int = 40_000_000
    max_aspect_ratio: float = 16.0
    pil_resize: bool = False
    square: int | None = None
    class_list: str = ""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.overlap < 1.0:
            raise LmsegError(f"overlap must be in [0, 1), got {self.overlap}")
        if self.max_pixels < 1 or self.max_aspect_ratio < 1:
            raise LmsegError("max_pixels and max_aspect_ratio must be at least 1")
        if self.short_side is not None and self.short_side < 16:
            raise LmsegError(f"short_side must be at least 16, got {self.short_side}")
        if self.class_list:
            get_class_list_source(self.class_list)  # an unknown id fails here, before any model loads

    def check_window(self, input_size: int) -> None:
        """Check the settings against a model whose input is ``input_size`` pixels (the default window).

        Raises:
            LmsegError: ``square`` is smaller than the window.
        """
        window = self.window or input_size
        if self.square is not None and self.square < window:
            raise LmsegError(f"inference.square ({self.square}) must be at least the window ({window})")


LMSEG_CONFIGS: dict[str, LMSegConfig] = {
    "lmseg_vitb16": LMSegConfig(),
    # SAM 2.1 (Hiera-L) on the SAM side instead of SAM ViT-B: not published, trains as lmseg_vitb16
    "lmseg_vitb16_sam21": LMSegConfig(name="lmseg_vitb16_sam21", sam_model="sam2.1_hiera_large"),
    "lmseg_vitl14": LMSegConfig(
        name="lmseg_vitl14",
        clip_model="ViT-L-14-336",
        input_size=336,
        sam_model="vit_b",
        decoder_layers=(15, 7),
        decoder_guidance_dims=(32, 16),
    ),
    "lmseg_tiny": LMSegConfig(
        name="lmseg_tiny",
        clip_model="lmseg-tiny-ViT",
        clip_quick_gelu=False,
        input_size=64,
        sam_model="tiny",
        sam_tiny_size=64,
        hidden_dim=16,
        num_layers=2,
        window_size=2,
        num_heads=2,
        class_heads=2,
        text_guidance_dim=8,
        appearance_guidance_dim=8,
        cost_embed_kernel=3,
        decoder_layers=(1, 0),
        decoder_dims=(8, 8),
        decoder_guidance_dims=(8, 8),
    ),
}
#: lmseg_tiny with a reduced random SAM 2.1 on the SAM side (tests: the fusion of SAM 2.1 features)
LMSEG_CONFIGS["lmseg_tiny_sam21"] = replace(LMSEG_CONFIGS["lmseg_tiny"], name="lmseg_tiny_sam21",
                                            sam_model="sam2.1_test_tiny", sam_image_size=128)


def get_config(name: str) -> LMSegConfig:
    """The named preset (:data:`LMSEG_CONFIGS`).

    Raises:
        LmsegError: unknown name (the message lists the known ones).
    """
    return building.named_preset(LMSEG_CONFIGS, name, what="LMSeg config")


def config_from_dict(data: dict[str, Any]) -> LMSegConfig:
    """An :class:`LMSegConfig` from plain data (a checkpoint's ``config``): the preset
    ``data["name"]`` with the other fields replaced (lists become tuples).

    Raises:
        LmsegError: unknown preset or fields, or invalid values.
    """
    return building.config_from_dict(LMSEG_CONFIGS, data, default="lmseg_vitb16", what="LMSeg config")


__all__ = ["LMSEG_CONFIGS", "InferenceConfig", "LMSegConfig", "Pooling", "config_from_dict", "get_config"]
