"""Metrics: accuracy, per-class accuracy, mAP (against an inline reference), CF1/OF1, harmonic mean."""

from __future__ import annotations

import math
import random

import pytest
import torch
from mmadapt import hookimpl
from mmadapt.builtin import metrics as builtin_metrics
from mmadapt.errors import UserError
from mmadapt.metrics import F1, Accuracy, MeanAveragePrecision, PerClassAccuracy, average_precision, harmonic_mean
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
    builtin_metrics.register_metrics(
        register=lambda name, factory, config, summary: found.update({name: (factory, config)})
    )
    assert set(found) == {"accuracy", "per-class-accuracy", "map", "f1"}
    for factory, config in found.values():
        metric = factory(config() if config else object())
        assert hasattr(metric, "update") and hasattr(metric, "compute") and hasattr(metric, "reset")
    assert found["f1"][0](builtin_metrics.F1Config(threshold=0.5)).threshold == 0.5
    with pytest.raises(ValueError, match="f1.threshold"):
        builtin_metrics.F1Config(threshold=80)


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
