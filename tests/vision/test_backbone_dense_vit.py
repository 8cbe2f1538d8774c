"""DenseViT (DINOv2, DINOv3, C-RADIO through timm): parity with timm's own forward, strict weights."""

from __future__ import annotations

import pytest
import timm
import torch
from safetensors.torch import save_file

from lmseg.backbones.dense_vit import VIT_BACKBONES, DenseViT, create_dense_vit, load_timm_checkpoint
from lmseg.backbones.loading import CheckpointMismatchError
from lmseg.errors import LmsegError
from tests.tolerances import fp32_tolerance, longest_reduction
from tests.torch_threads import one_torch_thread  # noqa: F401 - autouse fixture

TINY = {"depth": 2, "embed_dim": 64, "num_heads": 2}
#: one backbone of each family and an input size of its patch (non-square)
CASES = [("dinov2_vitb14_reg", (56, 84)), ("dinov3_vitb16", (64, 96)), ("radio_v3_b", (64, 96))]


def _tiny(name: str, seed: int = 0) -> DenseViT:
    torch.manual_seed(seed)
    dense = create_dense_vit(name, weights=None, **TINY)
    with torch.no_grad():  # timm initialises prefix tokens and positions small; make them count
        for key, p in dense.model.named_parameters():
            if any(t in key for t in ("pos_embed", "cls_token", "reg_token")):
                p.normal_(std=0.5)
    return dense


@pytest.mark.parametrize(("name", "size"), CASES)
@torch.no_grad()
def test_map_equals_timm_forward_features(name: str, size: tuple[int, int]) -> None:
    dense = _tiny(name)
    x = torch.randn(2, 3, *size)
    maps = dense(x)
    ph, pw = dense.patch_size
    assert maps.shape == (2, 64, size[0] // ph, size[1] // pw)
    tokens = dense.model.forward_features(x)  # timm's own forward: prefix tokens, then patches
    expected = tokens[:, dense.num_prefix_tokens:].transpose(1, 2).reshape(maps.shape)
    # the patch embedding is the longest reduction; 2 blocks x 6 products + the position embedding and the norm
    torch.testing.assert_close(maps, expected, **fp32_tolerance(terms=longest_reduction(dense.model), depth=14))
    assert dense.num_prefix_tokens == {"dinov2_vitb14_reg": 5, "dinov3_vitb16": 5, "radio_v3_b": 8}[name]


def test_normalisation_and_sizes() -> None:
    radio = _tiny("radio_v3_b")
    assert radio.mean.flatten().tolist() == pytest.approx([0.48145466, 0.4578275, 0.40821073])  # CLIP's
    dino = _tiny("dinov3_vitb16")
    assert dino.std.flatten().tolist() == pytest.approx([0.229, 0.224, 0.225])  # ImageNet's
    x = torch.rand(1, 3, 32, 32)
    torch.testing.assert_close(dino.normalize(x), (x - dino.mean) / dino.std, rtol=0, atol=0)  # the same operations
    with pytest.raises(ValueError, match="multiple of the patch size"):
        dino(torch.zeros(1, 3, 40, 32))
    with pytest.raises(LmsegError, match="unknown DINOv2/DINOv3/RADIO backbone"):
        create_dense_vit("dinov9", weights=None)
    with pytest.raises(LmsegError, match="random weights only"):
        create_dense_vit("dinov3_vitb16", weights="hub", depth=2)


@pytest.mark.parametrize("name", [name for name, _ in CASES])
def test_strict_loading_of_the_package_state_dict(name: str, tmp_path) -> None:
    source = _tiny(name, seed=1).model
    target = _tiny(name, seed=2).model
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    load_timm_checkpoint(target, path, arch=name)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    # a renamed key and a missing key are refused, naming them
    state = dict(source.state_dict())
    first = next(iter(state))
    state["not_a_key"] = state.pop(first)
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    with pytest.raises(CheckpointMismatchError,
                       match=f"does not fit {name}.*missing key.*{first}.*unexpected.*not_a_key"):
        load_timm_checkpoint(target, path, arch=name)


def test_named_weights_file_and_offline_hub(tmp_path, monkeypatch) -> None:
    """A full-size backbone (DINOv3 ViT-S/16, random) saved and loaded back by path; hub offline."""
    torch.manual_seed(0)
    model = timm.create_model("vit_small_patch16_dinov3", pretrained=False, num_classes=0)
    path = tmp_path / "dinov3_vits16.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    dense = create_dense_vit("dinov3_vits16", weights=path)
    assert torch.equal(dense.model.cls_token, model.cls_token) and dense.width == 384
    monkeypatch.setenv("LMSEG_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(LmsegError, match=r"not in the local Hugging Face cache.*hf download "
                                         r"timm/vit_small_patch16_dinov3.lvd1689m model.safetensors"):
        create_dense_vit("dinov3_vits16", weights="hub")
    assert set(VIT_BACKBONES) >= {"dinov2_vitb14", "dinov3_vitb16", "radio_v3_b"}
