"""Building a :class:`~lmseg.backbones.clip.DenseCLIP`: open_clip model, weights, activation.

:func:`create_dense_clip` builds the model with ``open_clip.create_model`` and resolves weights:
an open_clip pretrained tag (open_clip downloads and caches it), a local checkpoint file (read
with ``weights_only=True`` and loaded strictly, see :mod:`lmseg.backbones.loading`), or
``None`` for random weights.

With ``LMSEG_OFFLINE=1`` a tag is served from the local caches only (open_clip's URL cache and
the Hugging Face hub cache, found without any network access); a tag that is not there is one
clear error at once, instead of the hub client's retries.

It handles the QuickGELU trap of OpenAI CLIP weights: open_clip 3.x only *warns* when a model
built with GELU gets weights trained with QuickGELU (or the other way round), which silently
degrades every feature. Here the activation is taken from the pretrained tag, a contradicting
request is an error, and for a weights file (which does not record its activation) the caller
must say which.
"""

from __future__ import annotations

import os
from pathlib import Path

import open_clip
import torch
from torch import nn

from lmseg.backbones.clip import DEFAULT_CLIP, DenseCLIP
from lmseg.backbones.loading import load_strict, read_state_dict
from lmseg.errors import LmsegError
from lmseg.paths import offline


def create_dense_clip(
    model_name: str = DEFAULT_CLIP,
    *,
    pretrained: str | os.PathLike[str] | None,
    quick_gelu: bool | None = None,
    interpolation_offset: float = 0.0,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    cache_dir: str | os.PathLike[str] | None = None,
) -> DenseCLIP:
    """Build a :class:`DenseCLIP` from an open_clip model name and weights (eval mode).

    Args:
        model_name: an open_clip model name (``"ViT-B-16"`` default, ``"ViT-L-14-336"``, ...,
            ``"lmseg-tiny-ViT"`` for tests); ``/`` is accepted for ``-``.
        pretrained: an open_clip pretrained tag for this model (e.g. ``"openai"``; open_clip
            downloads and caches it), the path of a local checkpoint file (an open_clip state
            dict, ``.safetensors`` or ``torch.save``), or None for random weights. Required, so
            that random weights are never used by accident.
        quick_gelu: the MLP activation. With a tag it is taken from the tag and a contradicting
            value raises. With a file it must be given (OpenAI CLIP weights: True; most
            LAION/DataComp weights: False) unless the model name fixes it (``*-quickgelu``).
            With random weights it defaults to the model config's.
        interpolation_offset: positional-embedding resize convention (see :class:`DenseCLIP`).
        device: where the model goes.
        precision: open_clip precision (``"fp32"``, ``"fp16"``, ``"bf16"``, ``"amp"``...).
        cache_dir: open_clip's download cache for tags (default: its own).

    Raises:
        LmsegError: unknown model or tag, missing file, QuickGELU contradiction or ambiguity,
            download failure (or, with ``LMSEG_OFFLINE=1``, a tag not in the local caches), or a
            checkpoint that does not fit the architecture.
    """
    name = model_name.replace("/", "-")
    model_cfg = open_clip.get_model_config(name)
    if model_cfg is None:
        raise LmsegError(f"unknown open_clip model {model_name!r}; see open_clip.list_models()")
    tag = os.fspath(pretrained) if pretrained is not None else None
    tag_cfg = open_clip.get_pretrained_cfg(name, tag) if tag is not None else {}
    path = None
    if tag is not None and not tag_cfg:
        path = Path(tag).expanduser()
        if not path.is_file():
            tags = open_clip.list_pretrained_tags_by_model(name)
            raise LmsegError(
                f"CLIP weights {tag!r} are neither a pretrained tag of {name} ({', '.join(tags) or 'none'}) "
                "nor an existing file"
            )
    use_quick = _decide_quick_gelu(
        name, bool(model_cfg.get("quick_gelu", False)), tag, tag_cfg, path, quick_gelu
    )
    if path is None and tag is not None and offline():
        model = _build(name, cached_tag_file(name, tag, tag_cfg, cache_dir), use_quick, device, precision, cache_dir)
    elif path is None:
        model = _build(name, tag, use_quick, device, precision, cache_dir, tag_cfg=tag_cfg)
    else:
        model = _build(name, None, use_quick, device, precision, cache_dir)
        # load_state_dict copies into the existing parameters: device and dtype are kept.
        load_strict(model, read_state_dict(path), source=str(path), arch=f"open_clip {name}")
    dense = DenseCLIP(model, model_name=name, interpolation_offset=interpolation_offset)
    return dense.eval()


def _decide_quick_gelu(
    name: str, cfg_quick: bool, tag: str | None, tag_cfg: dict, path: Path | None, requested: bool | None
) -> bool:
    """The MLP activation to build with: the tag's, the caller's, or an error on doubt or contradiction."""
    if tag_cfg:
        tag_quick = bool(tag_cfg.get("quick_gelu", False))
        if requested is not None and requested != tag_quick:
            raise LmsegError(
                f"quick_gelu={requested} contradicts pretrained tag {name}/{tag}, which was trained with "
                f"{'QuickGELU' if tag_quick else 'GELU'}; leave quick_gelu unset"
            )
        if cfg_quick and not tag_quick:
            raise LmsegError(f"model {name} uses QuickGELU but tag {tag!r} was trained with GELU; drop '-quickgelu'")
        return tag_quick
    if path is not None and requested is None and not cfg_quick:
        raise LmsegError(
            f"cannot tell from {path} whether its weights were trained with QuickGELU: pass quick_gelu=True "
            "for OpenAI CLIP weights (and other '-quickgelu' weights such as MetaCLIP and DFN), "
            "quick_gelu=False for most LAION and DataComp weights, or use a '-quickgelu' model name"
        )
    use_quick = cfg_quick if requested is None else requested
    if cfg_quick and not use_quick:
        raise LmsegError(f"model {name} is a QuickGELU model; quick_gelu=False contradicts it")
    return use_quick


def _tag_source(tag_cfg: dict) -> str:
    """Where a tag's weights file comes from, for messages (the hub, then the URL)."""
    sources = []
    if tag_cfg.get("hf_hub"):
        sources.append(f"open_clip_model.safetensors or open_clip_pytorch_model.bin from "
                       f"https://huggingface.co/{tag_cfg['hf_hub'].rstrip('/')}")
    if tag_cfg.get("url"):
        sources.append(tag_cfg["url"])
    return " or ".join(sources) or "the source listed by open_clip.get_pretrained_cfg"


def _file_hint(tag: str, tag_cfg: dict) -> str:
    return (f"download {_tag_source(tag_cfg)} elsewhere and give the file's path where you gave {tag!r} "
            f"(clip=PATH for a segmenter), with quick_gelu={bool(tag_cfg.get('quick_gelu', False))}")


def cached_tag_file(name: str, tag: str, tag_cfg: dict, cache_dir: str | os.PathLike[str] | None = None) -> str:
    """The local file of an open_clip tag, found without any network access (``LMSEG_OFFLINE``).

    Looks where open_clip's own download would have put it: the Hugging Face hub cache (the
    ``.safetensors`` alternative first, as open_clip prefers it) and open_clip's URL cache
    (``cache_dir`` or ``~/.cache/clip``).

    Raises:
        LmsegError: the file is in neither cache (one line: what to download and where to pass it).
    """
    hub = tag_cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache
        from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

        repo, filename = os.path.split(hub)
        filename = filename or HF_WEIGHTS_NAME
        safe = HF_SAFE_WEIGHTS_NAME if filename == HF_WEIGHTS_NAME else \
            str(Path(filename).with_suffix(".safetensors")) if filename.endswith((".bin", ".pth")) else None
        for candidate in (safe, filename):
            found = try_to_load_from_cache(repo, candidate, cache_dir=cache_dir) if candidate else None
            if isinstance(found, str) and Path(found).is_file():
                return found
    url = tag_cfg.get("url", "")
    if url:
        local = Path(cache_dir or Path("~/.cache/clip").expanduser()) / os.path.basename(url)
        if local.is_file():
            return str(local)
    raise LmsegError(f"LMSEG_OFFLINE is set and the weights of {name}/{tag} are not in the local caches: "
                     f"{_file_hint(tag, tag_cfg)}")


def _build(
    name: str,
    tag: str | None,
    quick: bool,
    device: str | torch.device,
    precision: str,
    cache_dir: str | os.PathLike[str] | None,
    *,
    tag_cfg: dict | None = None,
) -> nn.Module:
    try:
        return open_clip.create_model(
            name,
            pretrained=tag,
            force_quick_gelu=quick,
            device=device,
            precision=precision,
            cache_dir=os.fspath(cache_dir) if cache_dir is not None else None,
            weights_only=True,
        )
    except (RuntimeError, OSError) as exc:  # open_clip: RuntimeError; hub and URL failures: OSError
        if tag is None:
            raise
        first = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else type(exc).__name__
        raise LmsegError(
            f"open_clip could not get the weights of {name}/{tag}: {first}. On an offline machine, "
            f"{_file_hint(tag, tag_cfg or {})}."
        ) from exc

