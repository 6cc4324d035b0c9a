"""ivlp and maple as adapters: the engine's contract, the exact shared-prefix text pass, learning, new classes,
and the outputs regularising objectives read."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from mmadapt import Task, zeroshot_classifier
from mmadapt.testing import (
    assert_adapter_contract,
    assert_kg_regularizer_contract,
    assert_shared_prefix_exact,
    make_batch,
    tiny_bundle,
    train_steps,
)
from mmadapt_deep.config import IvlpConfig, MapleConfig
from mmadapt_deep.ivlp import Ivlp
from mmadapt_deep.maple import Maple

ADAPTERS = {
    "ivlp": lambda backbone, task, **options: Ivlp(IvlpConfig(**{"depth": 2, **options}), backbone, task),
    "maple": lambda backbone, task, **options: Maple(MapleConfig(**{"depth": 2, **options}), backbone, task),
}


@pytest.fixture(params=list(ADAPTERS))
def build(request):
    return ADAPTERS[request.param]


def test_the_adapter_contract_holds(build, tiny_backbone, tiny_task, tiny_batch):
    adapter = build(tiny_backbone, tiny_task)
    assert adapter.frozen_image_features is False  # prompted images: the engine must not cache their features
    assert_adapter_contract(adapter, tiny_batch)


def test_the_shared_prefix_text_pass_changes_neither_outputs_nor_gradients(build, tiny_backbone, tiny_task, tiny_batch):
    assert_shared_prefix_exact(build(tiny_backbone, tiny_task), tiny_batch)


@pytest.mark.parametrize("init", ["a photo of a", None])
def test_training_fits_the_tiny_task_and_holds_on_its_test_split(build, init, tiny_backbone):
    """30 Adam steps at 1e-2 on 16 images: the loss falls below a fifth of its start, every test image right."""
    torch.manual_seed(0)
    bundle = tiny_bundle()
    adapter = build(tiny_backbone, bundle.task, init=init)
    batch = make_batch(bundle.split("train"), tiny_backbone, size=16)
    losses = train_steps(adapter, batch, steps=30, lr=1e-2)
    assert losses[-1] < 0.2 * losses[0], losses
    test = make_batch(bundle.split("test"), tiny_backbone, size=32)
    adapter.eval()
    with torch.no_grad():
        accuracy = (adapter(test)["logits"].argmax(-1) == test["label"]).float().mean()
    assert accuracy == 1.0


def test_new_classes_reuse_the_learned_tokens(build, tiny_backbone):
    adapter = build(tiny_backbone, Task(["red", "green"]))
    state = {name: tensor.clone() for name, tensor in adapter.trainable_state_dict().items()}
    pixels = torch.randn(3, 3, 32, 32)
    adapter.set_task(Task(["blue", "yellow", "purple"]))
    adapter.eval()
    assert adapter({"image": pixels})["logits"].shape == (3, 3)
    for name, tensor in adapter.trainable_state_dict().items():
        assert torch.equal(tensor, state[name]), name
    # The classes' prompts keep the init words after the learned tokens: "[t_0] of a blue."
    assert adapter.prompt_classnames(["blue"]) == ["of a blue"]


def test_report_frozen_gives_clips_own_features_and_logits(build, tiny_backbone, tiny_task, tiny_batch):
    adapter = build(tiny_backbone, tiny_task, templates=["a photo of a {}.", "a drawing of a {}."]).train()
    assert "frozen_features" not in adapter(tiny_batch)
    adapter.report_frozen = True
    outputs = adapter(tiny_batch)
    image = tiny_backbone.encode_image(tiny_batch["image"], normalize=True)
    text = zeroshot_classifier(tiny_backbone, tiny_task.classnames, ["a photo of a {}.", "a drawing of a {}."])
    torch.testing.assert_close(outputs["frozen_features"], image, atol=1e-6, rtol=0)
    torch.testing.assert_close(outputs["frozen_text_features"], text, atol=1e-6, rtol=0)
    torch.testing.assert_close(outputs["frozen_logits"], tiny_backbone.logit_scale * image @ text.t(),
                               atol=1e-5, rtol=0)
    assert not outputs["frozen_features"].requires_grad and not outputs["frozen_text_features"].requires_grad
    # The prompted features differ from the frozen ones (the image tokens are in the pass).
    assert (outputs["features"] - image).abs().max() > 1e-6
    assert F.cross_entropy(outputs["logits"], tiny_batch["label"]).requires_grad


def test_the_kg_regularizer_works_with_deep_prompts(build, tiny_backbone, tiny_task, tiny_batch):
    """With J = 1 the text prompt starts as "a photo of a {name}.", the hand-written one the contract starts from
    (deeper text tokens start from noise, so with J > 1 the pull is not zero at the start)."""
    adapter = build(tiny_backbone, tiny_task, depth=1, templates=["a photo of a {}."])
    assert_kg_regularizer_contract(adapter, tiny_batch)
