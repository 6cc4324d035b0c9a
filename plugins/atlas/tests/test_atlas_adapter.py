"""The ``atlas`` adapter against its definition: theta = theta0 + sum_i Lambda_i tau_i over the image tower."""

from __future__ import annotations

import pytest
import torch
from atlas_testing import make_atlas, perturbed_backbone, write_vector
from mmadapt import UserError
from mmadapt.testing import assert_adapter_contract, parameter_snapshot, train_steps
from mmadapt_atlas.vectors import load_vector


def zeroshot_logits(plugin_manager, backbone, task, batch):
    zeroshot = plugin_manager.registry.get("adapter", "zeroshot")
    with torch.no_grad():
        return zeroshot.build(zeroshot.config(), backbone, task)(batch)["logits"]


def test_zero_coefficients_give_the_base_model_exactly(plugin_manager, tiny_backbone, tiny_task, tiny_batch,
                                                       vector_files):
    adapter = make_atlas(tiny_backbone, tiny_task, vector_files)
    assert not adapter.coefficients.any()
    with torch.no_grad():
        logits = adapter(tiny_batch)["logits"]
    assert torch.equal(logits, zeroshot_logits(plugin_manager, tiny_backbone, tiny_task, tiny_batch))


@pytest.mark.parametrize("partitions", [1, 3])
def test_one_vector_at_one_gives_the_fine_tuned_model(plugin_manager, tiny_backbone, tiny_task, tiny_batch,
                                                      vector_files, tuned_backbones, partitions):
    adapter = make_atlas(tiny_backbone, tiny_task, vector_files, partitions=partitions)
    with torch.no_grad():
        adapter.coefficients[0] = 1.0
        logits = adapter(tiny_batch)["logits"]
    expected = zeroshot_logits(plugin_manager, tuned_backbones[0], tiny_task, tiny_batch)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)
    assert not torch.allclose(logits, zeroshot_logits(plugin_manager, tiny_backbone, tiny_task, tiny_batch), atol=1e-3)


def test_coefficients_are_blockwise_and_mix_the_vectors_linearly(tiny_backbone, tiny_task, tiny_batch, vector_files):
    blocks = tiny_backbone.image.parameter_blocks()
    adapter = make_atlas(tiny_backbone, tiny_task, vector_files)
    names = [name for name, _ in adapter.block_names]
    with torch.no_grad():
        adapter.coefficients[0, names.index("model.visual.proj")] = 0.5
        adapter.coefficients[1, names.index("model.visual.conv1.weight")] = -2.0
        composed = adapter.composed_weights()
    first, second = (load_vector(path).tensors for path in vector_files)
    for name, base in blocks.items():
        expected = base.detach().clone()
        if name == "model.visual.proj":
            expected = expected + 0.5 * first[name]
        if name == "model.visual.conv1.weight":
            expected = expected + -2.0 * second[name]
        assert torch.equal(composed[name], expected), name


def test_coefficient_count_is_vectors_times_blocks_times_parts(tiny_backbone, tiny_task, vector_files):
    blocks = len(tiny_backbone.image.parameter_blocks())
    count = {options: make_atlas(tiny_backbone, tiny_task, vector_files, **dict(options))
             .parameter_counts()["trainable"] for options in ((), (("partitions", 4),), (("isotropic", True),))}
    assert count[()] == 2 * blocks
    assert count[(("partitions", 4),)] == 2 * blocks * 4
    assert count[(("isotropic", True),)] == 2


def test_isotropic_scales_every_block_by_one_coefficient(plugin_manager, tiny_backbone, tiny_task, tiny_batch,
                                                         vector_files):
    isotropic = make_atlas(tiny_backbone, tiny_task, vector_files, isotropic=True)
    blockwise = make_atlas(tiny_backbone, tiny_task, vector_files)
    with torch.no_grad():
        isotropic.coefficients[:] = torch.tensor([0.3, -0.7]).view(2, 1, 1)
        blockwise.coefficients[0], blockwise.coefficients[1] = 0.3, -0.7
        assert torch.equal(isotropic(tiny_batch)["logits"], blockwise(tiny_batch)["logits"])


def test_parts_cover_every_weight_once(tiny_backbone, tiny_task, tiny_batch, vector_files):
    parted = make_atlas(tiny_backbone, tiny_task, vector_files, partitions=3)
    whole = make_atlas(tiny_backbone, tiny_task, vector_files)
    with torch.no_grad():
        parted.coefficients[:] = 0.25
        whole.coefficients[:] = 0.25
        for (name, a), b in zip(parted.composed_weights().items(), whole.composed_weights().values()):
            assert torch.equal(a, b), name
        parted.coefficients[:, :, 0] = 0.0  # one part off: the blocks differ where that part is
        differ = sum(not torch.equal(a, b) for a, b in zip(parted.composed_weights().values(),
                                                            whole.composed_weights().values()))
    assert differ == len(parted.block_names)


def test_gradients_reach_only_the_coefficients(tiny_backbone, tiny_task, tiny_batch, vector_files):
    adapter = make_atlas(tiny_backbone, tiny_task, vector_files)
    vectors = {name: buffer.clone() for name, buffer in adapter.bank.named_buffers()}
    before = parameter_snapshot(adapter)
    losses = train_steps(adapter, tiny_batch, steps=15, lr=0.05)
    assert losses[-1] < losses[0], losses
    for name, param in adapter.named_parameters():
        assert torch.equal(param.detach(), before[name]) != (name == "coefficients"), name
    for name, buffer in adapter.bank.named_buffers():
        assert torch.equal(buffer, vectors[name]), name
    assert [name for name, p in adapter.named_parameters() if p.requires_grad] == ["coefficients"]
    assert list(adapter.trainable_state_dict()) == ["coefficients"]


def test_the_adapter_keeps_the_contract(tiny_backbone, tiny_task, tiny_batch, vector_files):
    assert_adapter_contract(make_atlas(tiny_backbone, tiny_task, vector_files, partitions=2), tiny_batch)


def test_fp16_vectors_stay_fp16_and_coefficients_fp32(tiny_backbone, tiny_task, tuned_backbones, tmp_path):
    path = write_vector(tiny_backbone, tuned_backbones[0], tmp_path / "half.safetensors", dtype=torch.float16)
    adapter = make_atlas(tiny_backbone, tiny_task, [path])
    assert {buffer.dtype for buffer in adapter.bank.buffers()} == {torch.float16}
    assert adapter.coefficients.dtype == torch.float32


def test_a_vector_of_another_base_is_refused_with_the_reason(tiny_backbone, tiny_task, tuned_backbones, tmp_path):
    other_base = perturbed_backbone(7)
    path = write_vector(other_base, tuned_backbones[0], tmp_path / "other-base.safetensors")
    with pytest.raises(UserError, match="fine-tuned from another base model"):
        make_atlas(tiny_backbone, tiny_task, [path])


def test_the_runs_own_task_is_refused_unless_allowed(tiny_backbone, tiny_task, tuned_backbones, tmp_path):
    path = write_vector(tiny_backbone, tuned_backbones[0], tmp_path / "own.safetensors", task=tiny_task.name)
    with pytest.raises(UserError, match="own task"):
        make_atlas(tiny_backbone, tiny_task, [path])
    assert make_atlas(tiny_backbone, tiny_task, [path], allow_own_task=True).coefficients.shape[0] == 1


def test_missing_and_foreign_files_are_named(tiny_backbone, tiny_task, tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        make_atlas(tiny_backbone, tiny_task, [str(tmp_path / "nowhere.safetensors")])
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(UserError, match="not a task vector"):
        make_atlas(tiny_backbone, tiny_task, [str(tmp_path / "plain.safetensors")])


def test_the_config_refuses_what_has_no_meaning():
    from mmadapt_atlas.config import AtlasConfig

    with pytest.raises(ValueError, match="adapter.vectors"):
        AtlasConfig(vectors=[])
    with pytest.raises(ValueError, match="adapter.partitions"):
        AtlasConfig(vectors=["a"], partitions=0)
    with pytest.raises(ValueError, match="isotropic"):
        AtlasConfig(vectors=["a"], isotropic=True, partitions=2)
