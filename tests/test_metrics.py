"""Metrics: accuracy, per-class accuracy, mAP (against an inline reference), CF1/OF1, harmonic mean, PSNR, SSIM."""

from __future__ import annotations

import math
import random

import pytest
import torch
from mmadapt import hookimpl
from mmadapt.builtin import config as builtin_metrics
from mmadapt.builtin.plugin import register_metrics
from mmadapt.errors import UserError
from mmadapt.metrics import (
    F1,
    PSNR_CAP_DB,
    Accuracy,
    MeanAveragePrecision,
    PeakSignalNoiseRatio,
    PerClassAccuracy,
    StructuralSimilarity,
    average_precision,
    harmonic_mean,
)
from mmadapt.registry import import_reference
from mmadapt.testing import run_recipe, tiny_recipe


def _batch(labels):
    return {"label": torch.tensor(labels)}


def _logits_of(probabilities):
    return {"logits": torch.logit(torch.tensor(probabilities, dtype=torch.float64))}


def test_harmonic_mean():
    assert round(harmonic_mean(82.69, 63.22), 2) == 71.66
    assert harmonic_mean(0.0, 0.0) == 0.0


def test_accuracy_accumulates_and_resets():
    metric = Accuracy()
    metric.update({"logits": torch.tensor([[2.0, 1.0], [0.0, 3.0]])}, _batch([0, 0]))
    metric.update({"logits": torch.tensor([[0.0, 1.0]])}, _batch([1]))
    assert metric.compute() == {"accuracy": pytest.approx(200 / 3)}
    metric.reset()
    assert math.isnan(metric.compute()["accuracy"])


def test_accuracy_refuses_multi_hot_labels():
    with pytest.raises(ValueError, match="single-label"):
        Accuracy().update({"logits": torch.zeros(1, 2)}, {"label": torch.tensor([[1.0, 0.0]])})


def test_per_class_accuracy():
    metric = PerClassAccuracy(per_class=True)
    logits = torch.eye(3)[[0, 0, 0, 1, 2]]  # predictions 0, 0, 0, 1, 2
    metric.update({"logits": logits * 5}, _batch([0, 0, 1, 1, 1]))
    values = metric.compute()
    # class 0: 2/2, class 1: 1/3, class 2: no samples (left out of the mean)
    assert values["mean_per_class_accuracy"] == pytest.approx((100 + 100 / 3) / 2)
    assert values["class_0_accuracy"] == 100 and values["class_1_accuracy"] == pytest.approx(100 / 3)
    assert "class_2_accuracy" not in values


def _reference_ap(scores, targets):
    """AP over distinct thresholds, highest first: sum of recall gains times precision."""
    pairs = list(zip(scores, targets))
    positives = sum(targets)
    ap, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores), reverse=True):
        kept = [t for s, t in pairs if s >= threshold]
        recall = sum(kept) / positives
        ap += (recall - previous_recall) * (sum(kept) / len(kept))
        previous_recall = recall
    return ap


def test_average_precision_by_hand():
    assert average_precision(torch.tensor([0.9, 0.8, 0.7, 0.6]), torch.tensor([1, 0, 1, 0])) == pytest.approx(5 / 6)
    # Tied scores enter together, whatever their order: 0.5 * 1/2 + 0.5 * 2/3.
    assert average_precision(torch.tensor([0.9, 0.9, 0.1]), torch.tensor([0, 1, 1])) == pytest.approx(7 / 12)
    assert average_precision(torch.tensor([0.9, 0.9, 0.1]), torch.tensor([1, 0, 1])) == pytest.approx(7 / 12)
    assert math.isnan(average_precision(torch.tensor([0.3]), torch.tensor([0])))


def test_map_matches_reference_over_classes_with_positives():
    rng = random.Random(0)
    n, classes = 40, 5
    # Rounded scores create ties; class 4 has no positive and must be left out.
    probabilities = [[round(rng.random(), 1) for _ in range(classes)] for _ in range(n)]
    targets = [[int(rng.random() < 0.4) if c < 4 else 0 for c in range(classes)] for _ in range(n)]
    metric = MeanAveragePrecision()
    for start in range(0, n, 16):
        metric.update(
            {"logits": torch.logit(torch.tensor(probabilities[start : start + 16]).clamp(1e-6, 1 - 1e-6))},
            {"label": torch.tensor(targets[start : start + 16], dtype=torch.float32)},
        )
    expected = [_reference_ap([row[c] for row in probabilities], [row[c] for row in targets]) for c in range(4)]
    assert metric.compute()["map"] == pytest.approx(100 * sum(expected) / 4, abs=1e-4)
    metric.classes = [1, 3]
    assert metric.compute()["map"] == pytest.approx(100 * (expected[1] + expected[3]) / 2, abs=1e-4)


def test_f1_at_threshold_by_hand():
    probabilities = [[0.9, 0.85, 0.1], [0.81, 0.2, 0.95], [0.5, 0.79, 0.99]]
    targets = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 1, 1]], dtype=torch.float32)
    metric = F1()
    metric.update(_logits_of(probabilities), {"label": targets})
    values = metric.compute()
    # Per class (P, R): (1, 1), (0, 0), (1/2, 1); pooled: tp 3, fp 2, fn 2.
    assert values["cp"] == pytest.approx(50) and values["cr"] == pytest.approx(200 / 3)
    assert values["cf1"] == pytest.approx(100 * 2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert (
        values["op"] == pytest.approx(60) and values["or"] == pytest.approx(60) and values["of1"] == pytest.approx(60)
    )
    seen = F1(classes=[0, 2])
    seen.update(_logits_of(probabilities), {"label": targets})
    values = seen.compute()
    assert values["cf1"] == pytest.approx(100 * 2 * 0.75 / 1.75) and values["of1"] == pytest.approx(
        100 * 2 * 0.75 / 1.75
    )


def test_empty_metrics_report_nan():
    assert math.isnan(MeanAveragePrecision().compute()["map"])
    assert all(math.isnan(v) for v in F1(classes=[0]).compute().values())


def test_registration_builds_every_metric():
    found = {}
    register_metrics(
        register=lambda name, factory, config, summary: found.update({name: (factory, config)})
    )
    assert set(found) == {"accuracy", "per-class-accuracy", "map", "f1", "psnr", "ssim"}
    for factory, config in found.values():
        metric = import_reference(factory)(config() if config else None)
        assert hasattr(metric, "update") and hasattr(metric, "compute") and hasattr(metric, "reset")
    assert import_reference(found["f1"][0])(builtin_metrics.F1Config(threshold=0.5)).threshold == 0.5
    with pytest.raises(ValueError, match="f1.threshold"):
        builtin_metrics.F1Config(threshold=80)
    assert list(import_reference(found["psnr"][0])(builtin_metrics.PsnrConfig(channel="y")).compute()) == ["psnr_y"]
    with pytest.raises(ValueError, match="psnr.channel must be one of rgb, y"):
        builtin_metrics.PsnrConfig(channel="yuv")


# -- image metrics ----------------------------------------------------------------------------------


def _images(*sizes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.rand(3, h, w, generator=generator) for h, w in sizes]


def _score(metric, predictions, targets):
    metric.update({"images": predictions}, {"target": targets})
    return metric.compute()


def test_identical_images_of_different_sizes_score_the_cap_and_one():
    images = _images((97, 131), (64, 80))
    assert _score(PeakSignalNoiseRatio(), images, images) == {"psnr": PSNR_CAP_DB}
    assert _score(StructuralSimilarity(), images, images) == {"ssim": pytest.approx(1.0, abs=1e-12)}


def test_psnr_is_the_mean_of_per_image_values():
    targets = [torch.full((3, 5, 7), 0.5), torch.full((3, 4, 4), 0.5)]
    predictions = [targets[0] + 0.1, targets[1] - 0.01]  # MSE 1e-2 -> 20 dB, 1e-4 -> 40 dB
    assert _score(PeakSignalNoiseRatio(), predictions, targets)["psnr"] == pytest.approx(30.0)


def test_psnr_clamps_predictions_to_the_pixel_range():
    target = [torch.ones(3, 4, 4)]
    assert _score(PeakSignalNoiseRatio(), [torch.full((3, 4, 4), 1.3)], target) == {"psnr": PSNR_CAP_DB}


def test_psnr_on_the_y_channel_ignores_changes_luma_does_not_see():
    target = torch.full((3, 6, 6), 0.5)
    shift = torch.tensor([0.02, 0.0, -0.02 * 65.481 / 24.966]).view(3, 1, 1)  # same BT.601 luma
    assert _score(PeakSignalNoiseRatio(channel="y"), [target + shift], [target]) == {"psnr_y": PSNR_CAP_DB}
    assert _score(PeakSignalNoiseRatio(), [target + shift], [target])["psnr"] < 50


def test_ssim_per_image_agrees_with_torchmetrics_and_lists_equal_tensors():
    from torchmetrics.functional.image import structural_similarity_index_measure

    targets = torch.stack(_images((32, 40), (32, 40), seed=1))
    predictions = (targets + 0.1 * torch.stack(_images((32, 40), (32, 40), seed=2))).clamp(0, 1)
    expected = structural_similarity_index_measure(predictions.double(), targets.double(), data_range=1.0,
                                                   reduction="none").mean()
    assert _score(StructuralSimilarity(), predictions, targets)["ssim"] == pytest.approx(float(expected))
    assert _score(StructuralSimilarity(), list(predictions), list(targets))["ssim"] == pytest.approx(float(expected))


def test_darker_images_score_lower():
    targets = _images((20, 30), (16, 16))
    darker = [image * 0.5 for image in targets]
    assert _score(PeakSignalNoiseRatio(), darker, targets)["psnr"] < 20
    assert _score(StructuralSimilarity(), darker, targets)["ssim"] < 0.9


def test_image_metrics_refuse_mismatched_sizes_and_report_nan_when_empty():
    with pytest.raises(ValueError, match=r"shape \(3, 4, 5\) but its target \(3, 5, 4\)"):
        _score(StructuralSimilarity(), [torch.zeros(3, 4, 5)], [torch.zeros(3, 5, 4)])
    with pytest.raises(ValueError, match="1 output images for 2 targets"):
        _score(PeakSignalNoiseRatio(), [torch.zeros(3, 4, 4)], [torch.zeros(3, 4, 4)] * 2)
    assert math.isnan(PeakSignalNoiseRatio().compute()["psnr"]) and math.isnan(StructuralSimilarity().compute()["ssim"])
    with pytest.raises(ValueError, match="'ssim' needs images of at least 6x6 pixels"):
        _score(StructuralSimilarity(), [torch.zeros(3, 5, 40)], [torch.zeros(3, 5, 40)])
    assert _score(StructuralSimilarity(), [torch.zeros(3, 6, 6)], [torch.zeros(3, 6, 6)]) == {"ssim": 1.0}


class _SeenIndices:
    """A metric that records which items it was given, reading the batch's ``index`` as well."""

    inputs = {"outputs": ("logits",), "batch": ("label", "index")}
    seen: list[int] = []

    def reset(self):
        pass

    def update(self, outputs, batch):
        assert outputs["logits"].shape[0] == batch["label"].shape[0] == batch["index"].shape[0]
        type(self).seen += batch["index"].tolist()

    def compute(self):
        return {"items": float(len(type(self).seen))}


class _ReadsMissingOutput(_SeenIndices):
    inputs = {"outputs": ("enhanced",)}


class _MetricPlugin:
    @hookimpl
    def register_metrics(self, register):
        register("seen-indices", lambda config: _SeenIndices(), None, "test: records item indices")
        register("reads-missing", lambda config: _ReadsMissingOutput(), None, "test: reads an absent output")


def test_metrics_get_the_per_sample_tensors_they_declare_in_item_order(tiny_plugin, register_plugin, tmp_path):
    register_plugin(_MetricPlugin(), "metric-plugin")
    _SeenIndices.seen = []
    summary = run_recipe(tiny_recipe(eval={"metrics": ["accuracy", "seen-indices"], "batch_size": 5}), tmp_path)
    n = summary["metrics"]["test/items"]
    assert n == 32 and _SeenIndices.seen == list(range(32))  # every test item once, in order


def test_a_metric_reading_an_absent_output_is_a_clear_error(tiny_plugin, register_plugin, tmp_path):
    register_plugin(_MetricPlugin(), "metric-plugin")
    with pytest.raises(UserError, match="reads 'enhanced' from the adapter outputs, which has no such tensor"):
        run_recipe(tiny_recipe(eval={"metrics": ["reads-missing"]}), tmp_path)


def test_image_psnr_takes_one_image_with_or_without_batch_axis_and_caps_exact_copies():
    from mmadapt import image_psnr

    image = torch.rand(3, 9, 7, generator=torch.Generator().manual_seed(0))
    darker = image * 0.5
    for channel in ("rgb", "y"):
        assert image_psnr(image, image, channel) == 100.0
        assert image_psnr(darker, image, channel) == image_psnr(darker[None], image[None], channel) < 100.0
    # Luma weights the channels unequally, so its error is not the RGB mean error.
    assert image_psnr(darker, image, "y") != image_psnr(darker, image)
