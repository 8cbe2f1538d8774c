"""SegmentationMetric against an independent per-class computation on real label maps.

Ground truth: the real labelled samples (ADE-150 raw PNGs with reduce-zero-label, A-847 uint16
TIFF with 65535 ignore, Cityscapes, CamVid and VOC with 255 ignore regions). Predictions: the
same label maps perturbed (shifted, classes swapped, noise, a class that is absent from the
ground truth, ignore pixels filled with arbitrary classes). The reference below uses boolean
masks per class and Python sums; it shares no code with the bincount implementation.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lmseg.errors import LmsegError
from lmseg.evaluation import SegmentationMetric, SegmentationScores
from tests.data import samples as S
from tests.tolerances import U64, fp32_tolerance

# ----------------------------------------------------------------------------- reference


def reference_scores(predictions, labels, num_classes, ignore_index):
    """Straightforward per-class IoU/accuracy by masks, summed over images (mmseg definition)."""
    inter = [0] * num_classes
    area_gt = [0] * num_classes
    area_pred = [0] * num_classes
    for prediction, label in zip(predictions, labels):
        counted = label != ignore_index
        classes = set(np.unique(label[counted]).tolist()) | set(np.unique(prediction[counted]).tolist())
        for c in classes:
            gt_c = (label == c) & counted
            pred_c = (prediction == c) & counted
            inter[c] += int(np.count_nonzero(gt_c & pred_c))
            area_gt[c] += int(np.count_nonzero(gt_c))
            area_pred[c] += int(np.count_nonzero(pred_c))
    iou, acc = [], []
    for c in range(num_classes):
        union = area_gt[c] + area_pred[c] - inter[c]
        iou.append(inter[c] / union if union else math.nan)
        acc.append(inter[c] / area_gt[c] if area_gt[c] else math.nan)
    valid_iou = [v for v in iou if not math.isnan(v)]
    valid_acc = [v for v in acc if not math.isnan(v)]
    total = sum(area_gt)
    return {
        "iou": iou,
        "accuracy": acc,
        "mean_iou": sum(valid_iou) / len(valid_iou),
        "mean_accuracy": sum(valid_acc) / len(valid_acc),
        "pixel_accuracy": sum(inter) / total,
        "fw_iou": sum(area_gt[c] / total * iou[c] for c in range(num_classes) if area_gt[c]),
    }


def reference_confusion(predictions, labels, num_classes, ignore_index):
    """Counts of distinct (ground truth, prediction) pairs, by sorting (np.unique), not bincount."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    for prediction, label in zip(predictions, labels):
        counted = label != ignore_index
        codes = label[counted].astype(np.int64) * num_classes + prediction[counted]
        distinct, counts = np.unique(codes, return_counts=True)
        for code, n in zip(distinct.tolist(), counts.tolist()):
            matrix[code // num_classes, code % num_classes] += n
    return matrix


def assert_matches_reference(scores: SegmentationScores, ref: dict) -> None:
    # per-class ratios of exact integer counts: one correctly rounded float64 division on both sides: exact
    np.testing.assert_allclose(scores.iou, ref["iou"], rtol=0, atol=0, equal_nan=True)
    np.testing.assert_allclose(scores.accuracy, ref["accuracy"], rtol=0, atol=0, equal_nan=True)
    # float64 sums over the classes in another order (the frequency weights' products first: depth 2)
    rel = fp32_tolerance(terms=len(ref["iou"]), depth=2, u=U64)["rtol"]
    for key in ("mean_iou", "mean_accuracy", "pixel_accuracy", "fw_iou"):
        assert getattr(scores, key) == pytest.approx(ref[key], rel=rel), key


# ------------------------------------------------------------------------- perturbations


def perturb(label: np.ndarray, num_classes: int, ignore_index: int, seed: int, absent_class: int | None = None):
    """A plausible wrong prediction made from a ground-truth map (always in 0..K-1)."""
    rng = np.random.default_rng(seed)
    prediction = label.astype(np.int64)
    prediction = np.roll(prediction, shift=(7, -11), axis=(0, 1))  # boundary errors
    counted = prediction[prediction != ignore_index]
    present = np.unique(counted)
    if present.size >= 2:  # confuse two present classes inside one band
        a, b = present[0], present[-1]
        band = slice(label.shape[0] // 3, label.shape[0] // 2)
        sub = prediction[band]
        sub[sub == a] = b
    noise = rng.random(label.shape) < 0.05  # mostly present classes, plus a few random ones
    candidates = np.concatenate([present[present != ignore_index], rng.integers(0, num_classes, 5)])
    prediction[noise] = rng.choice(candidates, int(noise.sum()))
    ignored = prediction == ignore_index
    prediction[ignored] = rng.integers(0, num_classes, int(ignored.sum()))  # anything where GT is ignored
    if absent_class is not None:
        prediction[: label.shape[0] // 10, : label.shape[1] // 10] = absent_class
    return prediction.astype(label.dtype if label.dtype != np.bool_ else np.int64)


def real_ground_truth(pack, decode):
    return [decode(S.stored(S.label_of(image, ".tif" if pack == S.ADE847 else ".png"))) for image in S.images(pack)]


CASES = {
    # name: (pack, num_classes, ignore_index, decode)
    "ade150_reduce_zero_label": (S.ADE150, 150, 255, S.reduce_zero_label),
    "ade847_tiff_uint16": (S.ADE847, 847, 65535, lambda raw: raw),
    "cityscapes19": (S.CITYSCAPES, 19, 255, lambda raw: raw),
    "camvid11": (S.CAMVID, 11, 255, lambda raw: raw),
    "voc21_labelme": (S.VOC_LABELME, 21, 255, lambda raw: raw),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def real_case(request):
    pack, k, ignore, decode = CASES[request.param]
    labels = real_ground_truth(pack, decode)
    assert any((lab == ignore).any() for lab in labels), "each case must contain ignore pixels"
    gt_classes = set().union(*(np.unique(lab[lab != ignore]).tolist() for lab in labels))
    absent = next((c for c in range(k) if c not in gt_classes), None)
    predictions = [perturb(lab, k, ignore, seed, absent) for seed, lab in enumerate(labels)]
    return request.param, k, ignore, labels, predictions, absent


# --------------------------------------------------------------------------------- tests


def test_matches_independent_computation_on_real_labels(real_case):
    _, k, ignore, labels, predictions, absent = real_case
    metric = SegmentationMetric(k, ignore_index=ignore)
    for prediction, label in zip(predictions, labels):
        metric.update(prediction, label)
    scores = metric.compute()
    assert_matches_reference(scores, reference_scores(predictions, labels, k, ignore))
    np.testing.assert_array_equal(scores.confusion, reference_confusion(predictions, labels, k, ignore))
    assert scores.num_pixels == sum(int((lab != ignore).sum()) for lab in labels)
    if absent is not None:
        assert scores.iou[absent] == 0.0  # predicted, absent from GT: counts as 0
    assert 0.0 < scores.mean_iou < 1.0


def test_perfect_prediction_scores_one_on_real_labels(real_case):
    _, k, ignore, labels, _, _ = real_case
    metric = SegmentationMetric(k, ignore_index=ignore)
    for label in labels:
        prediction = np.where(label == ignore, 0, label)  # arbitrary class where GT is ignored
        metric.update(prediction, label)
    scores = metric.compute()
    present = ~np.isnan(scores.iou)
    assert scores.mean_iou == 1.0 and scores.pixel_accuracy == 1.0 and scores.fw_iou == pytest.approx(1.0)
    assert np.all(scores.iou[present] == 1.0)
    assert np.isnan(scores.iou).sum() == k - present.sum()  # classes absent from both are NaN


def test_merging_shards_equals_one_big_update(real_case):
    _, k, ignore, labels, predictions, _ = real_case
    # shards: the top and bottom half of every image, as separate workers would see them
    pieces = [
        (p[rows], lab[rows])
        for p, lab in zip(predictions, labels)
        for rows in (np.s_[: len(lab) // 2], np.s_[len(lab) // 2 :])
    ]
    whole = SegmentationMetric(k, ignore)
    for prediction, label in zip(predictions, labels):
        whole.update(prediction, label)
    shards = [SegmentationMetric(k, ignore) for _ in pieces]
    for shard, (prediction, label) in zip(shards, pieces):
        shard.update(prediction, label)
    merged_in_place = SegmentationMetric(k, ignore).merge(*shards)
    added = shards[0] + shards[1]
    for shard in shards[2:]:
        added = added + shard
    summed = sum(shards)
    for other in (merged_in_place, added, summed):
        np.testing.assert_array_equal(other.confusion, whole.confusion)
        assert other.compute().mean_iou == whole.compute().mean_iou
    # + leaves its operands alone
    only_first = SegmentationMetric(k, ignore)
    only_first.update(*pieces[0])
    np.testing.assert_array_equal(shards[0].confusion, only_first.confusion)


def test_reduce_zero_label_regions_are_ignored_whatever_is_predicted():
    raw = S.stored(S.label_of(S.images(S.ADE150)[0]))
    label = S.reduce_zero_label(raw)
    assert (raw == 0).any()
    good = np.where(label == 255, 0, label)
    wild = good.copy()
    wild[raw == 0] = 149  # change only the "other" pixels
    a, b = SegmentationMetric(150), SegmentationMetric(150)
    a.update(good, label)
    b.update(wild, label)
    np.testing.assert_array_equal(a.confusion, b.confusion)
    assert b.compute().num_pixels == int((raw != 0).sum())


def test_hand_computed_example():
    label = np.array([[0, 0, 1, 1], [2, 2, 255, 255]])
    prediction = np.array([[0, 1, 1, 1], [2, 3, 0, 3]])
    metric = SegmentationMetric(5)
    metric.update(prediction, label)
    scores = metric.compute()
    # class 0: TP 1, FN 1, FP 0 -> 1/2; class 1: TP 2, FP 1 -> 2/3; class 2: TP 1, FN 1 -> 1/2;
    # class 3: predicted once, no GT -> 0; class 4: nowhere -> NaN
    np.testing.assert_allclose(scores.iou, [0.5, 2 / 3, 0.5, 0.0, np.nan], equal_nan=True)
    np.testing.assert_allclose(scores.accuracy, [0.5, 1.0, 0.5, np.nan, np.nan], equal_nan=True)
    assert scores.mean_iou == pytest.approx((0.5 + 2 / 3 + 0.5 + 0.0) / 4)
    assert scores.mean_accuracy == pytest.approx((0.5 + 1.0 + 0.5) / 3)
    assert scores.pixel_accuracy == pytest.approx(4 / 6)
    assert scores.fw_iou == pytest.approx(2 / 6 * 0.5 + 2 / 6 * 2 / 3 + 2 / 6 * 0.5)
    assert scores.confusion[0].tolist() == [1, 1, 0, 0, 0] and scores.confusion[2].tolist() == [0, 0, 1, 1, 0]


def test_batched_update_equals_per_image():
    labels = real_ground_truth(S.CAMVID, lambda raw: raw)
    predictions = [perturb(lab, 11, 255, seed) for seed, lab in enumerate(labels)]
    batched, single = SegmentationMetric(11), SegmentationMetric(11)
    batched.update(np.stack(predictions), np.stack(labels))
    for prediction, label in zip(predictions, labels):
        single.update(prediction, label)
    np.testing.assert_array_equal(batched.confusion, single.confusion)


def test_scores_are_fractions_frozen_and_json_ready():
    labels = real_ground_truth(S.CITYSCAPES, lambda raw: raw)
    metric = SegmentationMetric(19)
    metric.update(np.roll(np.where(labels[0] == 255, 0, labels[0]), 5, axis=1), labels[0])
    scores = metric.compute()
    for value in (scores.mean_iou, scores.mean_accuracy, scores.pixel_accuracy, scores.fw_iou):
        assert 0.0 <= value <= 1.0
    with pytest.raises(AttributeError):
        scores.mean_iou = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        scores.iou[0] = 1.0
    metric.update(np.where(labels[0] == 255, 0, labels[0]), labels[0])  # later updates leave `scores` alone
    assert scores.num_pixels == int((labels[0] != 255).sum())
    data = json.loads(json.dumps(scores.to_dict()))
    assert data["num_pixels"] == scores.num_pixels and len(data["iou"]) == 19
    assert None in data["iou"]  # NaN classes are written as null
    rebuilt = SegmentationMetric.from_confusion(np.array(data["confusion"]))
    assert rebuilt.compute().mean_iou == scores.mean_iou


def test_empty_and_fully_ignored_give_nan():
    metric = SegmentationMetric(3)
    assert math.isnan(metric.compute().mean_iou)
    metric.update(np.zeros((4, 4), np.uint8), np.full((4, 4), 255, np.uint8))
    scores = metric.compute()
    assert scores.num_pixels == 0
    assert all(math.isnan(v) for v in (scores.mean_iou, scores.mean_accuracy, scores.pixel_accuracy, scores.fw_iou))


def test_reset():
    metric = SegmentationMetric(2)
    metric.update(np.array([0, 1]), np.array([1, 1]))
    metric.reset()
    assert metric.confusion.sum() == 0


# --------------------------------------------------------------------------- bad input


def test_shape_mismatch_is_an_error():
    with pytest.raises(LmsegError, match=r"prediction shape \(2, 3\) differs from label shape \(3, 2\)"):
        SegmentationMetric(4).update(np.zeros((2, 3), int), np.zeros((3, 2), int))


@pytest.mark.parametrize("bad", [-1, 4, 255])
def test_prediction_out_of_range_is_an_error(bad):
    prediction = np.array([[0, 1], [2, bad]])
    with pytest.raises(LmsegError, match=rf"prediction has values outside 0..3: {bad}"):
        SegmentationMetric(4).update(prediction, np.zeros((2, 2), int))


def test_label_out_of_range_names_the_values():
    label = np.array([[0, 7, 9], [255, 1, 7]], dtype=np.uint8)
    with pytest.raises(LmsegError, match=r"neither a class index \(0..3\) nor the ignore index 255: 7, 9"):
        SegmentationMetric(4).update(np.zeros_like(label), label)


def test_many_bad_label_values_are_summarised():
    label = np.arange(100, 140).reshape(4, 10)
    with pytest.raises(LmsegError, match=r"\(40 distinct values\)"):
        SegmentationMetric(4).update(np.zeros_like(label), label)


def test_float_arrays_are_rejected():
    with pytest.raises(LmsegError, match="integer array"):
        SegmentationMetric(4).update(np.zeros((2, 2)), np.zeros((2, 2), int))


@pytest.mark.parametrize("args", [(0,), (-3,), (300, 255)])
def test_bad_constructor_arguments(args):
    with pytest.raises(LmsegError):
        SegmentationMetric(*args)


def test_merge_mismatch_is_an_error():
    with pytest.raises(LmsegError, match=r"different numbers of classes \(4 and 5\)"):
        SegmentationMetric(4).merge(SegmentationMetric(5))
    with pytest.raises(LmsegError, match="different ignore indices"):
        SegmentationMetric(4, 255) + SegmentationMetric(4, 65535)
    with pytest.raises(LmsegError, match="must be square"):
        SegmentationMetric.from_confusion(np.zeros((3, 4), np.int64))
    with pytest.raises(LmsegError, match="non-negative integer"):
        SegmentationMetric.from_confusion(-np.ones((3, 3), np.int64))
