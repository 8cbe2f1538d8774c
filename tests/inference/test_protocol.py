"""Protocol records: complete, identical for identical runs, different where a setting differs,
written into every ``segment`` output folder."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("torch", reason="protocol records of real models need the vision environment")

from lmseg.inference.outputs import segment_files  # noqa: E402
from lmseg.inference.protocol import protocol_record, weight_files  # noqa: E402
from lmseg.registry import create_segmenter  # noqa: E402

VOCAB = ["road", "sky, heaven"]


def differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ (what comparing two runs' records shows)."""
    keys = sorted(set(a) | set(b))
    out = []
    for key in keys:
        left, right = a.get(key), b.get(key)
        if isinstance(left, dict) and isinstance(right, dict):
            out += differences(left, right, f"{prefix}{key}.")
        elif left != right:
            out.append(f"{prefix}{key}")
    return out


def test_two_runs_compare_by_their_records(tmp_path) -> None:
    first = protocol_record(create_segmenter("trident_tiny"), VOCAB)
    assert differences(first, protocol_record(create_segmenter("trident_tiny"), VOCAB)) == []
    other = protocol_record(create_segmenter("trident_tiny", seed=1, config={"stride": 64}), VOCAB)
    assert set(differences(first, other)) == {
        "method.settings.stride", "method.windows.stride", "weights.parameters.clip", "weights.parameters.dino",
        "weights.parameters.sam",
    }
    assert "vocabulary.sha256" in differences(first, protocol_record(create_segmenter("trident_tiny"), ["road", "sky"]))
    method = first["method"]
    assert method["precision"]["clip_image"] == "torch.float32" and "fp16" in method["precision"]["published"]
    assert method["windows"] == {"size": 64, "stride": 32}
    assert "cv2 INTER_LINEAR" in method["resize"]["clip"] and "PIL" in method["resize"]["sam"]


def test_weight_files_are_hashed_and_names_kept(tmp_path) -> None:
    weights = tmp_path / "sam.pth"
    weights.write_bytes(b"weights")
    files = weight_files({"sam": str(weights), "clip": "openai", "device": "cpu", "config": {"stride": 1}})
    assert files == {
        "clip": {"name": "openai"},
        "sam": {"path": str(weights), "sha256": hashlib.sha256(b"weights").hexdigest()},
    }


def test_segment_output_folder_holds_the_record(tmp_path) -> None:
    source = tmp_path / "in"
    source.mkdir()
    Image.fromarray(np.full((40, 56, 3), 99, np.uint8)).save(source / "a.png")
    segmenter = create_segmenter("trident_tiny")
    segment_files(segmenter, source, VOCAB, tmp_path / "out", num_workers=0, options={"clip": "openai"})
    written = json.loads((tmp_path / "out" / "protocol.json").read_text())
    expected = json.loads(json.dumps(protocol_record(segmenter, VOCAB, options={"clip": "openai"})))
    assert written == expected and written["weights"]["files"] == {"clip": {"name": "openai"}}
