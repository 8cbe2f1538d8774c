"""sam3_tiny end to end: a straight-line reference through the package's own single-prompt forward,
batching, determinism, the command line (segment, evaluate), records and errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import lmseg
from lmseg.backbones.sam3 import cpu_context
from lmseg.errors import LmsegError
from lmseg.models.sam3 import Sam3Predictor
from tests.tolerances import fp32_tolerance

from .conftest import IMAGE

VOCAB = ["person", "dog;puppy", "sky"]
# Prompts batched or one at a time (the image features are the same bits): the text-conditioned
# chain is the encoder layer (self, image and text attention, MLP: 10 products), the decoder layer
# (14), the scoring MLP (3), the pixel decoder's 3 convolutions (3 x 3 x 256 = 2304 terms, the
# longest), the mask embedding (3) and its product (1): depth 34. Measured (2026-12-07, 2-core
# EPYC): max difference 9e-8 on scores up to 0.11.
PROMPT_SIDE = fp32_tolerance(terms=2304, depth=34)


@torch.no_grad()
def _reference(seg: Sam3Predictor, image: np.ndarray) -> np.ndarray:
    """The class scores, straight: SAM 3's processor encodes the image; each prompt runs alone
    through ``forward_grounding`` with the processor's own one-prompt ``FindStage`` (as
    ``Sam3Processor.set_text_prompt`` does); the documented rule is applied with plain loops."""
    from sam3.model.sam3_image_processor import Sam3Processor

    detector = seg.model.detector
    processor = Sam3Processor(detector.model, resolution=detector.img_size, device="cpu")
    state = processor.set_image(Image.fromarray(image))
    classes = {0: ["person"], 1: ["dog", "puppy"], 2: ["sky"]}
    maps = []
    for names in classes.values():
        best = None
        for name in names:
            state["backbone_out"].update(detector.model.backbone.forward_text([name], device="cpu"))
            with cpu_context(torch.device("cpu")):
                out = detector.model.forward_grounding(backbone_out=state["backbone_out"],
                                                       find_input=processor.find_stage, find_target=None,
                                                       geometric_prompt=detector.model._get_dummy_prompt())
            presence = out["presence_logit_dec"][0].sigmoid()
            scores = out["pred_logits"][0, :, 0].sigmoid() * presence  # (Q,)
            instances = (scores[:, None, None] * out["pred_masks"][0].sigmoid()).amax(0)  # every query kept (> 0)
            semantic = out["semantic_seg"][0, 0].sigmoid() * presence
            evidence = torch.maximum(instances, semantic)
            best = evidence if best is None else torch.maximum(best, evidence)
        maps.append(best)
    scores = F.interpolate(torch.stack(maps)[None], image.shape[:2], mode="bilinear", align_corners=False)[0]
    return scores.clamp(0, 1).numpy()


def test_scores_equal_the_straight_line_reference(tiny: Sam3Predictor) -> None:
    image = np.asarray(Image.open(IMAGE).convert("RGB"))
    scores = tiny.logits(image, VOCAB)
    assert scores.shape == (3, 226, 640) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, _reference(tiny, image), **PROMPT_SIDE)
    result = tiny.predict(image, VOCAB, return_scores=True)
    np.testing.assert_array_equal(result.label_map, scores.argmax(0))
    np.testing.assert_array_equal(result.scores, scores)  # the same computation: exact
    assert result.class_names == ("person", "dog", "sky")


def test_batching_seed_and_settings(tiny: Sam3Predictor) -> None:
    image = np.asarray(Image.open(IMAGE).convert("RGB"))
    reference = tiny.logits(image, VOCAB)
    one_at_a_time = lmseg.create_segmenter("sam3_tiny", config={"prompt_batch": 1, "text_batch": 1, "class_chunk": 1})
    np.testing.assert_allclose(one_at_a_time.logits(image, VOCAB), reference, **PROMPT_SIDE)
    assert np.array_equal(lmseg.create_segmenter("sam3_tiny").logits(image, VOCAB), reference)  # same seed
    other_seed = lmseg.create_segmenter("sam3_tiny", seed=1).logits(image, VOCAB)
    assert not np.allclose(other_seed, reference, **PROMPT_SIDE)  # beyond the rounding of another order
    mean = lmseg.create_segmenter("sam3_tiny", config={"prompt_pooling": "mean", "competition": "softmax"})
    probs = mean.logits(image, VOCAB)
    np.testing.assert_allclose(probs.sum(0), 1.0, **fp32_tolerance(terms=3, depth=2))  # softmax over 3, summed
    assert tiny.settings()["image_size"] == 112 and tiny.settings()["evidence"] == "both"


def test_protocol_record(tiny: Sam3Predictor) -> None:
    from lmseg.inference.protocol import protocol_record

    record = protocol_record(tiny, VOCAB)
    assert record["method"]["method"] == "sam3" and record["method"]["prompts"]["num_prompts"] == 4
    assert set(record["weights"]["parameters"]) == {"detector"}
    other = protocol_record(lmseg.create_segmenter("sam3_tiny", config={"prompt_pooling": "mean"}), VOCAB)
    assert record["weights"] == other["weights"] and record["method"]["settings"] != other["method"]["settings"]


def test_published_class_list_preset(tiny: Sam3Predictor) -> None:
    from lmseg.vocab import get_vocabulary

    seg = lmseg.create_segmenter("sam3_tiny", benchmark="voc21")
    vocab, prompts = seg.prompts(get_vocabulary("voc21"))
    assert seg.config.class_list == "trident/voc21"
    background = [t for t, c in zip(prompts.texts, prompts.classes) if c == 0]
    assert background[:3] == ["sky", "wall", "tree"] and len(background) == 26  # Trident's background synonyms
    assert seg.protocol(vocab)["prompts"]["class_list"]["id"] == "trident/voc21"
    _, own = seg.prompts(["road", "sky"])  # another vocabulary keeps its own names
    assert own.texts == ("road", "sky")


def test_segment_command_writes_a_label_map(tmp_path, capsys) -> None:
    from pipelines.segment import main

    out = tmp_path / "out"
    code = main([IMAGE, "--model", "sam3_tiny", "--classes", "person,dog,sky", "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    with Image.open(out / "000000000472_label.png") as label:
        labels = np.asarray(label)
    assert labels.shape == (226, 640) and labels.max() <= 2
    protocol = json.loads((out / "protocol.json").read_text())
    assert protocol["method"]["method"] == "sam3" and protocol["method"]["variant"] == "sam3_tiny"
    assert protocol["libraries"]["sam3"] == "0.1.4"


def test_evaluate_command(tmp_path) -> None:
    """The whole ADE-150 vocabulary (150 classes, one prompt each) on one real sample."""
    from pipelines.evaluate import main
    from tests.data.samples import build_ade150

    root = tmp_path / "data"
    build_ade150(root)
    out = tmp_path / "eval"
    code = main(["--model", "sam3_tiny", "--set", "config.synonyms=false", "--dataset", "ade150", "--data-root",
                 str(root), "--limit", "1", "--output", str(out), "--workers", "0"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["complete"] and report["num_samples"] == 1 and 0.0 <= report["scores"]["mean_iou"] <= 1.0
    assert report["settings"]["protocol"]["method"]["prompts"]["num_prompts"] == 150


def test_variants_and_weights_errors(monkeypatch) -> None:
    assert {"sam3", "sam3_tiny"} <= set(lmseg.available_segmenters())
    with pytest.raises(LmsegError, match=r"sam3 needs the SAM 3 weights: pass weights='facebook/sam3'.*"
                                         r"huggingface.co/facebook/sam3"):
        lmseg.create_segmenter("sam3")
    monkeypatch.setenv("LMSEG_OFFLINE", "1")
    with pytest.raises(LmsegError, match=r"facebook/sam3 is gated: request access"):
        lmseg.create_segmenter("sam3", weights="sam3")
    with pytest.raises(TypeError, match="weights"):
        lmseg.create_segmenter("sam3_tiny", weights="sam3")
    with pytest.raises(LmsegError, match="sam3 config: unknown field"):
        lmseg.create_segmenter("sam3_tiny", config={"prompt_pool": "max"})
