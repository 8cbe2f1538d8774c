"""Weight resolution and download (against a real HTTP server on 127.0.0.1) and checkpoint reading."""

from __future__ import annotations

import hashlib
import socket
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from lmseg.backbones.loading import read_state_dict
from lmseg.backbones.weights import KNOWN_WEIGHTS, KnownWeights, download_file, fetch_known, resolve_weights
from lmseg.errors import LmsegError

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # ~1 MiB, crosses the 1 MiB read chunk
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


def _entry(url: str, *, sha256: str | None = DIGEST, size: int | None = len(PAYLOAD)) -> KnownWeights:
    return KnownWeights(name="test_ckpt", url=url, filename="test_ckpt.pth", sha256=sha256, size=size,
                        description="test checkpoint")


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_with_good_checksum(file_server, tmp_path) -> None:
    file_server.files["/ckpt.pth"] = PAYLOAD
    root = tmp_path / "weights"
    path = fetch_known(_entry(file_server.url("/ckpt.pth")), root=root)
    assert path == root / "test_ckpt.pth" and path.read_bytes() == PAYLOAD
    assert _leftovers(root) == ["test_ckpt.pth", "test_ckpt.pth.sha256"]  # no partial files
    # a second resolution uses the cache: no new request
    assert fetch_known(_entry(file_server.url("/ckpt.pth")), root=root) == path
    assert file_server.requests["/ckpt.pth"] == 1


def test_download_with_bad_checksum_leaves_nothing(file_server, tmp_path) -> None:
    file_server.files["/ckpt.pth"] = PAYLOAD[:-1] + b"X"  # same size, other data
    root = tmp_path / "weights"
    with pytest.raises(LmsegError, match=f"checksum mismatch for test checkpoint .*expected {DIGEST}"):
        fetch_known(_entry(file_server.url("/ckpt.pth")), root=root)
    assert _leftovers(root) == []


def test_download_with_wrong_size_leaves_nothing(file_server, tmp_path) -> None:
    file_server.files["/ckpt.pth"] = PAYLOAD[:1000]
    with pytest.raises(LmsegError, match=f"got 1000 bytes, expected {len(PAYLOAD)}"):
        download_file(file_server.url("/ckpt.pth"), tmp_path / "w" / "f.pth", size=len(PAYLOAD))
    assert _leftovers(tmp_path / "w") == []


def test_server_down_gives_a_clear_message(tmp_path) -> None:
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/sam.pth"
    root = tmp_path / "weights"
    with pytest.raises(LmsegError) as err:
        fetch_known(_entry(url), root=root)
    message = str(err.value)
    assert f"could not download test checkpoint from {url}" in message
    assert f"put it at {root / 'test_ckpt.pth'}" in message and "refused" in message.lower()
    assert _leftovers(root) == []


def test_http_error_gives_a_clear_message(file_server, tmp_path) -> None:
    with pytest.raises(LmsegError, match="could not download .*/missing.pth: HTTP 404 not found"):
        download_file(file_server.url("/missing.pth"), tmp_path / "f.pth")
    assert _leftovers(tmp_path) == []


def test_offline_mode_makes_no_request(file_server, tmp_path, monkeypatch) -> None:
    file_server.files["/ckpt.pth"] = PAYLOAD
    monkeypatch.setenv("LMSEG_OFFLINE", "1")
    with pytest.raises(LmsegError, match=r"downloads are off\. Download http://127.0.0.1:\d+/ckpt.pth \(sha256 "):
        fetch_known(_entry(file_server.url("/ckpt.pth")), root=tmp_path)
    assert file_server.requests == {}
    with pytest.raises(LmsegError, match="downloads are off"):
        fetch_known(_entry(file_server.url("/ckpt.pth")), root=tmp_path / "x", download=False)


def test_file_placed_by_hand_is_verified_once(tmp_path, file_server) -> None:
    root = tmp_path / "weights"
    root.mkdir()
    (root / "test_ckpt.pth").write_bytes(PAYLOAD)
    entry = _entry(file_server.url("/never-asked"))
    assert fetch_known(entry, root=root) == root / "test_ckpt.pth"
    assert (root / "test_ckpt.pth.sha256").read_text().strip() == DIGEST
    assert file_server.requests == {}
    (root / "test_ckpt.pth").write_bytes(PAYLOAD[:-1] + b"Y")  # replaced by other data of the same size
    (root / "test_ckpt.pth.sha256").unlink()
    with pytest.raises(LmsegError, match="does not match test checkpoint: sha256"):
        fetch_known(entry, root=root)
    (root / "test_ckpt.pth").write_bytes(b"short")
    with pytest.raises(LmsegError, match="has 5 bytes but test checkpoint has"):
        fetch_known(entry, root=root)


def test_unknown_checksum_still_downloads(file_server, tmp_path) -> None:
    file_server.files["/dino.pth"] = PAYLOAD
    path = fetch_known(_entry(file_server.url("/dino.pth"), sha256=None, size=None), root=tmp_path)
    assert path.read_bytes() == PAYLOAD and _leftovers(tmp_path) == ["test_ckpt.pth"]


def test_resolve_weights_paths_and_names(tmp_path, monkeypatch) -> None:
    file = tmp_path / "mine.pth"
    file.write_bytes(b"x")
    assert resolve_weights(file) == file
    assert resolve_weights(str(file)) == file
    with pytest.raises(LmsegError, match="weights file not found: .*nope.pth"):
        resolve_weights(tmp_path / "nope.pth")
    with pytest.raises(LmsegError, match="unknown weights name 'sam_vit_q'.*sam_vit_b, sam_vit_h, sam_vit_l"):
        resolve_weights("sam_vit_q")
    monkeypatch.setenv("LMSEG_OFFLINE", "yes")
    monkeypatch.setenv("LMSEG_CACHE_DIR", str(tmp_path / "c"))
    with pytest.raises(LmsegError, match=r"Segment Anything ViT-L .*Download https://dl.fbaipublicfiles.com/"
                                         r"segment_anything/sam_vit_l_0b3195.pth \(sha256 3adcc43"):
        resolve_weights("sam_vit_l")


def test_known_sam_checkpoints_are_complete() -> None:
    for arch in ("b", "l", "h"):
        entry = KNOWN_WEIGHTS[f"sam_vit_{arch}"]
        assert entry.url.startswith("https://dl.fbaipublicfiles.com/segment_anything/sam_vit_")
        assert entry.url.endswith(entry.filename)
        assert entry.sha256 is not None and len(entry.sha256) == 64 and entry.size is not None


# ---- reading checkpoints -------------------------------------------------------------------


def test_read_state_dict_formats(tmp_path) -> None:
    state = {"a.weight": torch.randn(2, 3), "b": torch.arange(4)}
    save_file(state, tmp_path / "w.safetensors")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, tmp_path / "w.pth")
    for name in ("w.safetensors", "w.pth"):
        got = read_state_dict(tmp_path / name)
        assert got.keys() == state.keys() and all(torch.equal(got[k], state[k]) for k in state)


class _Evil:
    def __reduce__(self):  # would run code when unpickled without weights_only
        return (print, ("pwned",))


def test_read_state_dict_refuses_bad_files(tmp_path) -> None:
    with pytest.raises(LmsegError, match="checkpoint file not found"):
        read_state_dict(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(LmsegError, match="junk.pth is corrupt or not a checkpoint") as caught:
        read_state_dict(tmp_path / "junk.pth")
    assert "weights_only" not in str(caught.value)  # never torch's advice to turn the safety off
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(LmsegError, match="as a safetensors file"):
        read_state_dict(tmp_path / "junk.safetensors")
    torch.save({"w": torch.zeros(1), "obj": _Evil()}, tmp_path / "evil.pth")
    with pytest.raises(LmsegError, match="evil.pth is not a plain checkpoint: it holds Python objects") as caught:
        read_state_dict(tmp_path / "evil.pth")
    assert "weights_only=False" not in str(caught.value)
    torch.save({"w": torch.zeros(1), "note": "text"}, tmp_path / "mixed.pth")
    with pytest.raises(LmsegError, match="not a plain state dict.*note"):
        read_state_dict(tmp_path / "mixed.pth")
    with warnings.catch_warnings():  # torch.jit is deprecated, but such files exist (OpenAI CLIP)
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "scripted.pt")
    with pytest.raises(LmsegError, match="TorchScript archive"):
        read_state_dict(tmp_path / "scripted.pt")
