"""DenseDINO: parity with timm's own forward, any input size, weights."""

from __future__ import annotations

import pytest
import timm
import torch

from lmseg.backbones.dino import DenseDINO, create_dense_dino
from lmseg.backbones.loading import CheckpointMismatchError
from lmseg.errors import LmsegError
from tests.tolerances import fp32_tolerance


def _tiny_timm_dino(seed: int = 0) -> torch.nn.Module:
    """The real DINO ViT family from timm, reduced (64 px, width 48, 2 blocks)."""
    torch.manual_seed(seed)
    model = timm.create_model(
        "vit_base_patch16_224.dino", pretrained=False, num_classes=0, dynamic_img_size=True,
        img_size=64, embed_dim=48, depth=2, num_heads=4,
    )
    with torch.no_grad():
        model.pos_embed.normal_(std=0.5)  # timm initialises it small; make the resize visible
    return model.eval()


@torch.no_grad()
def test_native_size_equals_timm_forward_features() -> None:
    model = _tiny_timm_dino()
    x = torch.randn(2, 3, 64, 64)
    tokens, grid = DenseDINO(model).forward_tokens(x)
    assert grid == (4, 4)
    torch.testing.assert_close(tokens, model.forward_features(x), rtol=0, atol=0)
    # the offset convention leaves the native size untouched as well
    torch.testing.assert_close(DenseDINO(model, interpolation_offset=0.1).forward_tokens(x)[0], tokens, rtol=0, atol=0)


@torch.no_grad()
def test_other_sizes_equal_timm_dynamic_size_path() -> None:
    model = _tiny_timm_dino()
    x = torch.randn(1, 3, 96, 160)
    dense = DenseDINO(model, antialias=True)  # timm's own resize is antialiased
    tokens, grid = dense.forward_tokens(x)
    assert grid == (6, 10)
    # patch embedding (3 x 16 x 16 = 768 terms), the resized position embedding, 2 blocks x 6 products, the
    # norm: depth 14
    tower = fp32_tolerance(terms=768, depth=14)
    torch.testing.assert_close(tokens, model.forward_features(x), **tower)
    patches = dense(x)
    assert patches.shape == (1, 48, 6, 10)
    torch.testing.assert_close(patches.flatten(2).transpose(1, 2), tokens[:, 1:], rtol=0, atol=0)
    # the default (DINO hub) resize is not antialiased, so it differs from timm's here
    assert not torch.allclose(DenseDINO(model).forward_tokens(x)[0], tokens, **tower)


def test_bad_sizes_and_models() -> None:
    model = _tiny_timm_dino()
    with pytest.raises(ValueError, match="multiple of the patch size"):
        DenseDINO(model)(torch.zeros(1, 3, 65, 64))
    fixed = timm.create_model("vit_base_patch16_224.dino", pretrained=False, num_classes=0, img_size=64,
                              embed_dim=48, depth=1, num_heads=4)
    with pytest.raises(LmsegError, match="dynamic_img_size=True"):
        DenseDINO(fixed)
    with pytest.raises(LmsegError, match="unknown timm model"):
        create_dense_dino("no_such_vit", weights=None)


def test_checkpoint_of_another_size_is_refused(tmp_path) -> None:
    path = tmp_path / "tiny_dino.pth"
    torch.save(_tiny_timm_dino().state_dict(), path)
    with pytest.raises(CheckpointMismatchError, match=r"does not fit timm vit_base_patch16_224.dino: .*missing key.*"
                                                      r"shape mismatch.*pos_embed: checkpoint \(1, 17, 48\) vs model "
                                                      r"\(1, 197, 768\)"):
        create_dense_dino(weights=path)
