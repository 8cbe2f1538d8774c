"""Bad checkpoint files give one clean error through every reader.

200 seeded garbage files (random bytes, truncated and damaged ``torch.save`` and safetensors
files, safetensors headers with random entries), each named ``.pt`` and ``.safetensors``, go
through every reader of the project: backbone weights (:func:`read_state_dict`, which CLIP, SAM
and DINO files go through), any ``torch.save`` file, a method's checkpoint
(:meth:`CheckpointFormat.read`) and a training checkpoint. Each gives one ``LmsegError`` line
naming the file, never a traceback of torch or safetensors, never torch's advice to turn
``weights_only`` off. Pickles that would run code are refused as such, and a checkpoint of
another method says so first.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import struct
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="checkpoints need the vision environment")

from lmseg.backbones.clip_factory import create_dense_clip  # noqa: E402
from lmseg.backbones.loading import load_torch_file, read_state_dict  # noqa: E402
from lmseg.engine.checkpoints import read_training_checkpoint  # noqa: E402
from lmseg.errors import LmsegError  # noqa: E402
from lmseg.models.lmseg import FORMAT  # noqa: E402
from lmseg.registry import create_segmenter  # noqa: E402

READERS = {
    "backbone weights": read_state_dict,
    "torch file": load_torch_file,
    "LMSeg checkpoint": FORMAT.read,
    "training checkpoint": read_training_checkpoint,
}


def _garbage(count: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """``(kind, bytes)`` of ``count`` bad files, six kinds in turn, drawn from ``seed``."""
    rng = random.Random(seed)
    buffer = io.BytesIO()
    torch.save({"a": torch.randn(3, 4), "b": {"c": torch.arange(5)}}, buffer)
    good_pt = buffer.getvalue()
    from safetensors.torch import save as save_safetensors

    good_st = save_safetensors({"a": torch.randn(3, 4), "b": torch.arange(5)})

    def noise(n: int) -> bytes:
        return bytes(rng.getrandbits(8) for _ in range(n))

    files = []
    for i in range(count):
        good = good_pt if i % 2 else good_st
        kind = ("random", "truncated", "damaged", "magic+noise", "safetensors header", "header length")[i % 6]
        if kind == "random":
            data = noise(rng.randint(0, 2000))
        elif kind == "truncated":
            data = good[: rng.randint(0, len(good) - 1)]
        elif kind == "damaged":
            data = bytearray(good)
            for _ in range(rng.randint(1, 20)):
                data[rng.randrange(len(data))] = rng.getrandbits(8)
            data = bytes(data)
        elif kind == "magic+noise":
            data = good[:8] + noise(rng.randint(0, 500))
        elif kind == "safetensors header":
            entry = {"dtype": rng.choice(["F32", "I64", "XX", "F16"]), "shape": [rng.randint(-3, 9), rng.randint(0, 5)],
                     "data_offsets": [rng.randint(-5, 50), rng.randint(-5, 5000)]}
            header = json.dumps({"a": entry}).encode()
            data = struct.pack("<Q", len(header)) + header + noise(rng.randint(0, 100))
        else:
            data = struct.pack("<Q", rng.getrandbits(64)) + noise(rng.randint(0, 100))
        files.append((kind, data))
    return files


def _assert_clean(exc: LmsegError, path: Path) -> None:
    message = str(exc)
    assert "\n" not in message and str(path) in message, message
    assert "weights_only" not in message and "Traceback" not in message, message


def test_two_hundred_garbage_files_give_one_clean_error_each(tmp_path, recwarn) -> None:
    loaded = 0
    for index, (kind, data) in enumerate(_garbage(200)):
        for suffix in (".pt", ".safetensors"):
            path = tmp_path / f"file{index:03d}{suffix}"
            path.write_bytes(data)
            for name, read in READERS.items():
                try:
                    result = read(path)
                except LmsegError as exc:
                    _assert_clean(exc, path)
                else:  # a damaged byte inside tensor data leaves a readable file: a plain result, not a crash
                    assert kind == "damaged" and name in ("backbone weights", "torch file"), (kind, name, path)
                    assert isinstance(result, dict)
                    loaded += 1
    assert loaded < 100  # nearly every file is refused
    assert not [w for w in recwarn.list if "pickle" in str(w.message)]  # torch's warnings about the file are silenced


class _Evil:
    def __reduce__(self):  # runs code when unpickled without weights_only
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_pickles_that_would_run_code_are_refused_as_such(tmp_path, protocol: int) -> None:
    saved = tmp_path / f"saved{protocol}.pt"
    torch.save({"w": torch.zeros(1), "obj": _Evil()}, saved, pickle_protocol=protocol)
    raw = tmp_path / f"raw{protocol}.pt"
    raw.write_bytes(pickle.dumps(_Evil(), protocol=protocol))
    for path in (saved, raw):
        for read in READERS.values():
            with pytest.raises(LmsegError, match=r"is not a plain .*: it holds Python objects \((posix|nt)\.system\)"):
                read(path)


def test_garbage_backbone_weights_through_the_clip_builder(tmp_path) -> None:
    for index, (_, data) in enumerate(_garbage(6, seed=1)):
        path = tmp_path / f"clip{index}{'.safetensors' if index % 2 else '.pt'}"
        path.write_bytes(data)
        with pytest.raises(LmsegError) as info:
            create_dense_clip("lmseg-tiny-ViT", pretrained=path, quick_gelu=False)
        _assert_clean(info.value, path)


def test_a_checkpoint_of_another_method_says_so_first(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "cache"))
    from lmseg.models.mgca import save_model

    path = save_model(create_segmenter("mgca_tiny").model, tmp_path / "mgca.pt")
    with pytest.raises(LmsegError) as info:
        create_segmenter("lmseg_tiny", checkpoint=path)
    assert str(info.value) == (f"{path} is not a checkpoint of LMSeg: it looks like an 'mgca' checkpoint (another "
                               "method's, config 'mgca_tiny'); use create_segmenter('mgca_tiny', checkpoint=...)")
