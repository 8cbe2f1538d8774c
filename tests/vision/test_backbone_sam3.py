"""SAM 3 through the sam3 package: our builder = the released one, parity with Sam3Processor, strict weights.

Runs on a CPU: the model is built from sam3's own classes without the two CUDA-only
constructors, and ``pin_memory`` (CUDA-only) is the identity within ``PinMemoryOnCpu`` (see
lmseg/backbones/sam3.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("sam3", reason="the sam3 package is not installed: run `make setup` (scripts/setup_vision_env.sh)")

from torch.overrides import TorchFunctionMode  # noqa: E402

from lmseg.backbones.loading import CheckpointMismatchError  # noqa: E402
from lmseg.backbones.sam3 import (  # noqa: E402
    Sam3Detector,
    cpu_context,
    create_sam3,
    create_sam3_image_encoder,
    init_untrained_text_,
    load_sam3_checkpoint,
    load_sam3_encoder_checkpoint,
)
from lmseg.backbones.sam3_build import SAM3_ARCHS, build_sam3_image, clip_bpe_path  # noqa: E402
from lmseg.errors import LmsegError  # noqa: E402
from tests.tolerances import fp32_tolerance  # noqa: E402
from tests.torch_threads import one_torch_thread  # noqa: E402, F401 - autouse fixture

PROMPTS = ["person", "dog", "blue sky"]

#: 3 prompts in one batch against one at a time, on the same image features: the prompt side's chain is
#: the geometry encoder (3 layers x (2 attentions x 6 products + 2 MLP layers) + projection: 43; the text
#: tower, 2 blocks x 6 + norm + resizer = 14, is shorter), the fusion encoder (1 layer: 14), the decoder
#: (1 layer: 3 attentions x 6 + 2 MLP layers + norm: 21), then the scoring (prompt MLP, 2 projections, dot
#: product: 5) or the mask embedding MLP and mask product (4) and the resize (1): depth 83 either way. The
#: longest reduction: the 2,048-wide MLPs for the scores, the pixel decoder's 3 x 3 convolutions over 256
#: channels (2,304 terms) for the masks.
SCORES = fp32_tolerance(terms=2048, depth=83)
MASKS = fp32_tolerance(terms=2304, depth=83)


@pytest.fixture(scope="module")
def tiny() -> Sam3Detector:
    torch.manual_seed(0)
    return create_sam3("sam3_test_tiny", weights=None)


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (120, 160, 3), dtype=np.uint8)


class _ReleasedBuilderOnMeta(TorchFunctionMode):
    """Test only: lets ``build_sam3_image_model`` run without CUDA and memory, to read its state dict.

    Tensors go to the meta device (shapes without storage), including the two that the released
    builder puts on "cuda"; ``.item()`` of a meta tensor (drop-path rates) reads 0.
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func is torch.Tensor.item and args[0].is_meta:
            return 0.0
        if kwargs.get("device") is not None and torch.device(kwargs["device"]).type == "cuda":
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


def test_architecture_equals_the_released_builder() -> None:
    """Every parameter and buffer name and shape of the released model (840M parameters)."""
    import warnings

    with warnings.catch_warnings(), torch.device("meta"), _ReleasedBuilderOnMeta():
        warnings.simplefilter("ignore")
        from sam3.model_builder import build_sam3_image_model

        released = build_sam3_image_model(bpe_path=clip_bpe_path(), device="cpu", load_from_HF=False)
        ours = build_sam3_image(SAM3_ARCHS["sam3"])
    theirs = {k: tuple(v.shape) for k, v in released.state_dict().items()}
    mine = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert len(mine) == 1134 and mine == theirs
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in released.parameters())


@torch.inference_mode()
def test_outputs_equal_the_package_processor(tiny: Sam3Detector) -> None:
    import PIL.Image
    from sam3.model.sam3_image_processor import Sam3Processor

    image = _image()
    encoded = tiny.encode_image(tiny.preprocess(image))
    out = tiny.ground(encoded, tiny.encode_text(PROMPTS), range(len(PROMPTS)))  # one batch of 3 prompts
    assert out["pred_masks"].shape == (3, 16, 32, 32) and out["semantic_seg"].shape == (3, 1, 32, 32)
    assert not any(bool(out[k].isnan().any()) for k in ("pred_logits", "pred_masks", "semantic_seg"))

    processor = Sam3Processor(tiny.model, resolution=tiny.img_size, device="cpu", confidence_threshold=0.0)
    state = processor.set_image(PIL.Image.fromarray(image))
    torch.testing.assert_close(encoded["vision_features"], state["backbone_out"]["vision_features"], rtol=0, atol=0)
    for i, prompt in enumerate(PROMPTS):  # the processor, one prompt at a time
        with cpu_context(torch.device("cpu")):
            state = processor.set_text_prompt(prompt, state)
        scores = (out["pred_logits"][i].sigmoid() * out["presence_logit_dec"][i].sigmoid()).squeeze(-1)
        # SCORES; measured (2026-12-07, shared 2-core CPU): 3.7e-8 (atol 2.7e-3)
        torch.testing.assert_close(scores, state["scores"], **SCORES)
        masks = torch.nn.functional.interpolate(out["pred_masks"][i][:, None], image.shape[:2], mode="bilinear",
                                                align_corners=False).sigmoid()
        # MASKS; measured (2026-12-07, shared 2-core CPU): 8.3e-7 (atol 2.8e-3)
        torch.testing.assert_close(masks, state["masks_logits"], **MASKS)


def test_strict_loading_of_the_released_layout(tiny: Sam3Detector, tmp_path) -> None:
    """``sam3.pt``'s layout: ``detector.*`` keys (loaded strictly), ``tracker.*`` keys (skipped)."""
    torch.manual_seed(3)
    source = init_untrained_text_(build_sam3_image(SAM3_ARCHS["sam3_test_tiny"]))
    path = tmp_path / "sam3.pt"
    state = {f"detector.{k}": v for k, v in source.state_dict().items()}
    torch.save({"model": {**state, "tracker.maskmem_tpos_enc": torch.zeros(7, 1, 1, 64)}}, path)
    target = build_sam3_image(SAM3_ARCHS["sam3_test_tiny"])
    load_sam3_checkpoint(target, path, arch="SAM 3 (tiny)")
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    # RoPE tables of another input size are recomputed, not refused
    from dataclasses import replace

    other = build_sam3_image(replace(SAM3_ARCHS["sam3_test_tiny"], img_size=168))
    load_sam3_checkpoint(other, path, arch="SAM 3 (tiny, 168)")
    assert torch.equal(other.state_dict()["backbone.language_backbone.resizer.weight"],
                       source.state_dict()["backbone.language_backbone.resizer.weight"])
    # a missing and an unexpected detector key are refused, naming them
    state["detector.transformer.extra"] = state.pop("detector.dot_prod_scoring.prompt_proj.weight")
    torch.save({"model": state}, path)
    with pytest.raises(CheckpointMismatchError, match=r"missing key.*prompt_proj.weight.*unexpected key.*extra"):
        load_sam3_checkpoint(target, path, arch="SAM 3 (tiny)")


@torch.inference_mode()
def test_image_encoder_alone_equals_the_processor(tiny: Sam3Detector, tmp_path) -> None:
    """The vision-only backbone (for fusion) loads its part of ``sam3.pt`` and gives the processor's features."""
    import PIL.Image
    from sam3.model.sam3_image_processor import Sam3Processor

    path = tmp_path / "sam3.pt"
    torch.save({"model": {f"detector.{k}": v for k, v in tiny.model.state_dict().items()}}, path)
    encoder = create_sam3_image_encoder("sam3_test_tiny", weights=None)
    load_sam3_encoder_checkpoint(encoder.backbone, path, arch="SAM 3 image encoder (tiny)")
    image = _image(4)
    features = encoder(torch.from_numpy(image).permute(2, 0, 1)[None].float())
    state = Sam3Processor(tiny.model, resolution=tiny.img_size, device="cpu").set_image(PIL.Image.fromarray(image))
    torch.testing.assert_close(features.features, state["backbone_out"]["vision_features"], rtol=0, atol=0)
    assert features.valid_grid() == (8, 8) and encoder.out_channels == 256
    assert sum(p.numel() for p in encoder.parameters()) < sum(p.numel() for p in tiny.parameters()) / 2


def test_names_sizes_and_gated_weights_offline(monkeypatch) -> None:
    with pytest.raises(LmsegError, match="unknown SAM 3 model"):
        create_sam3("sam4", weights=None)
    with pytest.raises(LmsegError, match="takes no weights"):
        create_sam3("sam3_test_tiny", weights="sam3")
    with pytest.raises(LmsegError, match="multiple of 14"):
        create_sam3("sam3_test_tiny", weights=None, image_size=100)
    monkeypatch.setenv("LMSEG_OFFLINE", "1")
    with pytest.raises(LmsegError, match=r"facebook/sam3 is gated: request access at https://huggingface.co/"
                                         r"facebook/sam3.*hf auth login.*HF_TOKEN"):
        create_sam3("sam3", weights="facebook/sam3")  # fails at once, before the 840M model is built
