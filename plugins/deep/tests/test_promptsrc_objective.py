"""PromptSRC's objective: each regulariser against a hand computation, the weights, the adapter contract."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from mmadapt import UserError
from mmadapt_deep.config import PromptSRCObjectiveConfig
from mmadapt_deep.self_regulation import build_promptsrc_objective, self_regulation_terms


def outputs_and_batch(seed: int = 0) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)

    def unit(*shape: int) -> torch.Tensor:
        return F.normalize(torch.randn(*shape, generator=generator), dim=-1)

    outputs = {"features": unit(3, 5), "text_features": unit(4, 5), "frozen_features": unit(3, 5),
               "frozen_text_features": unit(4, 5), "logits": 10 * torch.randn(3, 4, generator=generator),
               "frozen_logits": 10 * torch.randn(3, 4, generator=generator)}
    return outputs, {"label": torch.tensor([0, 3, 1])}


def hand_l1(a: torch.Tensor, b: torch.Tensor) -> float:
    values = [abs(x - y) for x, y in zip(a.flatten().tolist(), b.flatten().tolist())]
    return sum(values) / len(values)


def hand_kl(prompted: torch.Tensor, zero_shot: torch.Tensor, temperature: float) -> float:
    """sum over rows and classes of p_zs (log p_zs - log p_prompted), over B x C, times T^2."""
    total = 0.0
    for row_prompted, row_zero_shot in zip(prompted.tolist(), zero_shot.tolist()):
        def softmax(row: list[float]) -> list[float]:
            exps = [math.exp(v / temperature) for v in row]
            return [e / sum(exps) for e in exps]

        p, q = softmax(row_zero_shot), softmax(row_prompted)
        total += sum(pi * (math.log(pi) - math.log(qi)) for pi, qi in zip(p, q))
    return total * temperature**2 / prompted.numel()


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_each_term_equals_its_hand_computation(temperature):
    outputs, _ = outputs_and_batch()
    terms = self_regulation_terms(outputs, temperature)
    assert float(terms["text_l1"]) == pytest.approx(
        hand_l1(outputs["text_features"], outputs["frozen_text_features"]), abs=1e-6)
    assert float(terms["image_l1"]) == pytest.approx(hand_l1(outputs["features"], outputs["frozen_features"]),
                                                     abs=1e-6)
    kl = hand_kl(outputs["logits"], outputs["frozen_logits"], temperature)
    assert float(terms["logits_kl"]) == pytest.approx(kl, rel=1e-5)
    # The direction matters: zero-shot is the target distribution, not the prompted one.
    reverse = hand_kl(outputs["frozen_logits"], outputs["logits"], temperature)
    assert abs(reverse - kl) > 1e-3


def test_the_loss_is_cross_entropy_plus_the_weighted_terms():
    outputs, batch = outputs_and_batch(1)
    adapter = SimpleNamespace(report_frozen=False)
    loss, logged = build_promptsrc_objective(PromptSRCObjectiveConfig(), adapter)(outputs, batch)
    assert adapter.report_frozen is True
    terms = self_regulation_terms(outputs)
    cross_entropy = F.cross_entropy(outputs["logits"], batch["label"])
    expected = cross_entropy + 25 * terms["text_l1"] + 10 * terms["image_l1"] + terms["logits_kl"]
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
    assert set(logged) == {"cross_entropy", "text_l1", "image_l1", "logits_kl"}

    config = PromptSRCObjectiveConfig(text_weight=0.0, image_weight=2.0, logits_weight=0.5)
    loss, _ = build_promptsrc_objective(config, SimpleNamespace(report_frozen=False))(outputs, batch)
    assert float(loss) == pytest.approx(float(cross_entropy + 2 * terms["image_l1"] + 0.5 * terms["logits_kl"]),
                                        rel=1e-6)


def test_terms_vanish_when_the_prompted_model_is_frozen_clip():
    outputs, _ = outputs_and_batch(2)
    same = {**outputs, "features": outputs["frozen_features"], "text_features": outputs["frozen_text_features"],
            "logits": outputs["frozen_logits"]}
    assert all(float(value) == pytest.approx(0.0, abs=1e-7) for value in self_regulation_terms(same).values())


def test_an_adapter_without_frozen_features_is_refused():
    with pytest.raises(UserError, match="objective promptsrc needs an adapter that reports frozen CLIP features"):
        build_promptsrc_objective(PromptSRCObjectiveConfig(), SimpleNamespace())


@pytest.mark.parametrize(("key", "value", "message"), [("text_weight", -1.0, "loss weight"),
                                                       ("temperature", 0.0, "must be positive")])
def test_bad_settings_are_refused(key, value, message):
    with pytest.raises(ValueError, match=message):
        PromptSRCObjectiveConfig(**{key: value})
