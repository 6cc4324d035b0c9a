"""The promptsrc adapter: IVLP's prompts with PromptSRC's defaults, the frozen outputs its objective reads,
Gaussian prompt aggregation through the fit loop, a kill between epochs resumed to the same prompts, learning."""

from __future__ import annotations

import json
import signal

import pytest
import torch
import torch.nn.functional as F
from mmadapt import UserError, final_checkpoint, random_openclip_backbone, zeroshot_classifier
from mmadapt.testing import (
    adapt_subprocess,
    assert_adapter_contract,
    run_recipe,
    tiny_bundle,
    tiny_recipe,
    train_steps,
)
from mmadapt_deep.aggregation import gaussian_epoch_weights
from mmadapt_deep.config import PromptSRCConfig, PromptSRCObjectiveConfig
from mmadapt_deep.promptsrc import PromptSRC
from mmadapt_deep.self_regulation import build_promptsrc_objective
from mmadapt_deep.templates import PROMPTSRC_TEMPLATES
from omegaconf import OmegaConf
from safetensors.torch import load_file

#: On the tiny CLIP (2 blocks per tower): the dataset's templates, GPA centred on epoch 2 of 3.
TINY = {"name": "promptsrc", "depth": 2, "templates": None, "gpa_mean": 2.0, "gpa_std": 1.0}


def tiny_promptsrc_recipe(**train) -> dict:
    return tiny_recipe(adapter=TINY, objective={"name": "promptsrc"}, protocol={"name": "standard"},
                       train={"epochs": 3, "batch_size": 8, "lr": 0.01, "keep_checkpoints": 5, **train})


def test_defaults_are_the_papers():
    config = PromptSRCConfig()
    assert (config.n_text, config.n_visual, config.depth, config.init) == (4, 4, 9, "a photo of a")
    assert config.templates == list(PROMPTSRC_TEMPLATES) and len(config.templates) == 60
    assert (config.gpa, config.gpa_mean, config.gpa_std) == (True, 15.0, 1.0)


def test_vit_b16_trains_46_080_prompt_parameters():
    backbone = random_openclip_backbone("ViT-B-16")
    adapter = PromptSRC(PromptSRCConfig(), backbone, tiny_bundle().task)
    # 9 layers x 4 tokens x (512 text + 768 image widths).
    assert adapter.parameter_counts()["trainable"] == 9 * 4 * (512 + 768) == 46_080


def test_a_depth_beyond_the_towers_is_refused_naming_the_key(tiny_backbone, tiny_task):
    with pytest.raises(UserError, match=r"adapter.depth=9 .* set adapter.depth to at most 2"):
        PromptSRC(PromptSRCConfig(), tiny_backbone, tiny_task)


def test_the_objective_gets_the_frozen_outputs_it_reads(tiny_backbone, tiny_task, tiny_batch):
    adapter = PromptSRC(PromptSRCConfig(depth=2, templates=None), tiny_backbone, tiny_task)
    assert_adapter_contract(adapter, tiny_batch)
    objective = build_promptsrc_objective(PromptSRCObjectiveConfig(), adapter)
    adapter.train()
    outputs = adapter(tiny_batch)
    assert {"frozen_features", "frozen_text_features", "frozen_logits"} <= set(outputs)
    loss, terms = objective(outputs, tiny_batch)
    assert torch.isfinite(loss) and set(terms) == {"cross_entropy", "text_l1", "image_l1", "logits_kl"}
    # Frozen CLIP: its image features of the batch, the templates' ensemble, zero-shot logits from the two.
    frozen_image = F.normalize(tiny_backbone.encode_image(tiny_batch["image"]), dim=-1)
    frozen_text = zeroshot_classifier(tiny_backbone, tiny_task.classnames, tiny_task.templates)
    assert torch.allclose(outputs["frozen_features"], frozen_image, atol=1e-6)
    assert torch.allclose(outputs["frozen_text_features"], frozen_text, atol=1e-6)
    assert torch.allclose(outputs["frozen_logits"], tiny_backbone.logit_scale * frozen_image @ frozen_text.t(),
                          atol=1e-4)
    assert not outputs["frozen_features"].requires_grad and outputs["features"].requires_grad


def test_promptsrc_learns_on_one_batch(tiny_backbone, tiny_task, tiny_batch):
    adapter = PromptSRC(PromptSRCConfig(depth=2, templates=None), tiny_backbone, tiny_task)
    objective = build_promptsrc_objective(PromptSRCObjectiveConfig(), adapter)
    losses = train_steps(adapter, tiny_batch, steps=15, lr=1e-2, loss_fn=lambda out, batch: objective(out, batch)[0])
    assert losses[-1] < 0.8 * losses[0], losses


def test_the_trained_prompts_are_the_gaussian_weighted_mean_of_every_epochs_prompts(tiny_plugin, tmp_path,
                                                                                      monkeypatch):
    seen: list[list[torch.Tensor]] = []
    original = PromptSRC.on_epoch_end

    def record(self, stage, epoch, epochs):
        seen.append([p.detach().clone() for group in self.parameter_groups().values() for p in group])
        original(self, stage, epoch, epochs)

    monkeypatch.setattr(PromptSRC, "on_epoch_end", record)
    run_recipe(tiny_promptsrc_recipe(), tmp_path)
    assert len(seen) == 3
    weights = gaussian_epoch_weights(3, 2.0, 1.0)
    final = load_file(str(final_checkpoint(tmp_path / "run") / "adapter.safetensors"))
    names = ["prompt.ctx", "text_deep.0", "visual.0", "visual.1"]
    for index, name in enumerate(names):
        expected = sum(w * epoch[index].double() for w, epoch in zip(weights, seen))
        assert torch.allclose(final[name].double(), expected, atol=1e-6), name
        assert not torch.allclose(final[name], seen[-1][index], atol=1e-4), name  # GPA changed them


@pytest.mark.slow
def test_a_run_killed_between_epochs_resumes_to_the_same_prompts_and_metrics(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.create(tiny_promptsrc_recipe()), recipe)

    full = adapt_subprocess(["run", str(recipe), "--output-dir", str(tmp_path / "full")], tmp_path)
    assert full.returncode == 0, full.stderr
    killed = adapt_subprocess(["run", str(recipe), "--output-dir", str(tmp_path / "killed")], tmp_path,
                              kill_in_stage="train")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    written = {p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()}
    assert "train-epoch0001" in written and "train-epoch0003" not in written, written
    sums = load_file(str(tmp_path / "killed" / "checkpoints" / "train-epoch0001" / "adapter.safetensors"))
    assert float(sums["aggregation.running_0"].abs().sum()) > 0  # the running sums are in the checkpoint

    resumed = adapt_subprocess(["run", "--resume", str(tmp_path / "killed")], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    expected = json.loads((tmp_path / "full" / "summary.json").read_text())
    got = json.loads((tmp_path / "killed" / "summary.json").read_text())
    for key in ("metrics", "steps", "params"):
        assert got[key] == expected[key], key
    full_weights = load_file(str(final_checkpoint(tmp_path / "full") / "adapter.safetensors"))
    resumed_weights = load_file(str(final_checkpoint(tmp_path / "killed") / "adapter.safetensors"))
    assert full_weights.keys() == resumed_weights.keys()
    for name, tensor in full_weights.items():
        assert torch.equal(resumed_weights[name], tensor), name
