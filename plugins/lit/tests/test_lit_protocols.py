"""The rave and clip-lit protocols end to end on small ShapesWorld pairs: stages, state, figures, the grid."""

from __future__ import annotations

import json

import pytest
import torch
from lit_testing import shapes_recipe
from mmadapt import hookimpl
from mmadapt.testing import run_recipe
from PIL import Image
from safetensors.torch import load_file


class TowerWatch:
    """Keeps a copy of the backbone's tensors when a run ends."""

    def __init__(self):
        self.tower = None

    @hookimpl
    def on_run_end(self, run, summary):
        self.tower = {k: v.clone() for k, v in run.adapter.backbone.state_dict().items()}


def stage_weights(run_dir, stage):
    """The adapter tensors of a stage's final checkpoint."""
    folders = sorted((run_dir / "checkpoints").glob(f"{stage}-epoch*"))
    return load_file(str(folders[-1] / "adapter.safetensors"))


def test_rave_computes_the_residual_once_and_reports_before_and_after(rave_run):
    summary = json.loads((rave_run / "summary.json").read_text())
    metrics = summary["metrics"]
    for key in (
        "test/psnr",
        "test/psnr_y",
        "test/ssim",
        "test/mean_luminance",
        "test/under_exposed",
        "test/over_exposed",
        "test/cos_input",
        "test/cos_output",
        "test/cos_target",
        "test/input_psnr",
        "test/input_psnr_y",
        "test/input_ssim",
        "test/residual_target",
        "warmup/try0_psnr_y",
    ):
        assert key in metrics, key
    assert summary["params"]["trainable"] == 10_561
    # The well-lit targets lie further along v_res than the backlit inputs: that is what v_res is.
    assert metrics["test/cos_target"] > metrics["test/cos_input"]
    grid = Image.open(rave_run / "before-after.png")
    assert grid.height > 3 * 100 and grid.width > 3 * 100  # 3 rows of input, output, target
    folder = next((rave_run / "checkpoints").glob("enhance-epoch*"))
    state = load_file(str(folder / "protocol_state.safetensors"))
    torch.testing.assert_close(state["residual/vector"].norm(), torch.tensor(1.0))
    assert float(state["residual/target"]) == pytest.approx(metrics["test/residual_target"])


def test_clip_lit_stages_train_only_their_group_and_leave_the_tower_bit_identical(
    tmp_path, register_plugin, shapes_clip
):
    watch = TowerWatch()
    register_plugin(watch, "tower-watch")
    recipe = shapes_recipe(
        {"name": "clip-lit"},
        {
            "name": "clip-lit",
            "prompt_init_iterations": 30,
            "prompt_init_batch_size": 16,
            "rounds": 2,
            "prompt_iterations": 4,
            "prompt_batch_size": 4,
        },
    )
    summary = run_recipe(recipe, tmp_path)
    run_dir = tmp_path / "run"
    init, warmup = stage_weights(run_dir, "prompt-init"), stage_weights(run_dir, "warmup")
    enhanced, refined = stage_weights(run_dir, "round1-enhance"), stage_weights(run_dir, "round1-prompts")
    network = [k for k in init if k.startswith("network.")]
    assert torch.equal(init["prompts"], warmup["prompts"])
    assert not all(torch.equal(init[k], warmup[k]) for k in network)
    assert all(torch.equal(enhanced[k], refined[k]) for k in network)
    assert not torch.equal(enhanced["prompts"], refined["prompts"])
    reference = shapes_clip.state_dict()
    assert watch.tower.keys() == reference.keys()
    assert all(torch.equal(watch.tower[k], reference[k]) for k in reference)
    assert {"test/p_pos_input", "test/p_pos_output", "test/p_pos_target"} <= set(summary["metrics"])


def test_after_prompt_initialisation_well_lit_images_score_higher_on_the_positive_prompt(tmp_path, shapes_clip):
    from mmadapt import Task
    from mmadapt_lit.adapter import ClipLitLatentAdapter
    from mmadapt_lit.config import ClipLitLatentConfig

    recipe = shapes_recipe(
        {"name": "clip-lit-latent"},
        {
            "name": "clip-lit",
            "prompt_init_iterations": 60,
            "prompt_init_batch_size": 16,
            "rounds": 1,
            "enhance_iterations": 1,
            "prompt_iterations": 1,
        },
    )
    recipe["train"]["param_groups"] = {"prompts": {"lr": 0.05}}  # randn vectors of norm ~11 need large steps
    run_recipe(recipe, tmp_path)
    adapter = ClipLitLatentAdapter(
        ClipLitLatentConfig(network="zero-dce++"), shapes_clip, Task([], kind="image-to-image")
    )
    adapter.load_trainable_state_dict(stage_weights(tmp_path / "run", "prompt-init"))
    bundle = recipe_bundle(recipe)
    items = [bundle.split("test")[i] for i in range(8)]
    with torch.no_grad():
        prompts = adapter.prompt_features()
        backlit = adapter.embed(torch.stack([item["image"] for item in items]))
        well_lit = adapter.embed(torch.stack([item["target"] for item in items]))
    p_backlit = (100 * backlit @ prompts.t()).softmax(-1)[:, 1]
    p_well_lit = (100 * well_lit @ prompts.t()).softmax(-1)[:, 1]
    assert float(p_well_lit.mean()) > float(p_backlit.mean()) + 0.2


def recipe_bundle(recipe):
    from mmadapt import validate_section

    return validate_section("dataset", recipe["data"], where="data").build()


def test_the_warm_up_restart_rule_reinitialises_and_tries_again(tmp_path):
    recipe = shapes_recipe(
        {"name": "rave"},
        {
            "name": "rave",
            "restart_psnr": 200.0,
            "max_restarts": 2,
            "warmup_iterations": 3,
            "restart_check_iterations": 1,
            "enhance_iterations": 1,
        },
    )
    metrics = run_recipe(recipe, tmp_path)["metrics"]
    tries = [metrics[f"warmup/try{k}_psnr_y"] for k in range(3)]
    assert "warmup/try3_psnr_y" not in metrics
    assert len(set(tries)) == 3  # a fresh network each time
    stages = {p.name.rsplit("-epoch", 1)[0] for p in (tmp_path / "run" / "checkpoints").iterdir()}
    assert {"warmup-try0", "warmup-try1", "warmup-try2", "warmup", "enhance"} <= stages


@pytest.mark.slow
def test_the_identity_warm_up_pulls_a_perturbed_clip_lit_network_back_toward_the_identity(shapes_clip):
    # The network starts near the identity (head bias 1), so a fresh one keeps its input with no warm-up
    # at all. Starting from a head bias of 0.8 (outputs I / 0.8, brightened and clipped) the warm-up has
    # work to do: its objective must raise Y-PSNR(output, input).
    from mmadapt import Task, image_psnr
    from mmadapt_lit.adapter import RaveAdapter
    from mmadapt_lit.config import RaveConfig
    from mmadapt_lit.stages import identity_objective

    torch.manual_seed(0)
    recipe = shapes_recipe({}, {})
    recipe["data"]["train_size"] = 4
    split = recipe_bundle(recipe).split("train")
    images = torch.stack([split[i]["image"] for i in range(4)])
    adapter = RaveAdapter(RaveConfig(network="clip-lit-net"), shapes_clip, Task([], kind="image-to-image"))
    with torch.no_grad():
        adapter.network.head.bias.fill_(0.8)

    def psnr_y() -> float:
        with torch.no_grad():
            return sum(image_psnr(out, ref, "y") for out, ref in zip(adapter.enhance(images), images)) / len(images)

    before = psnr_y()
    objective = identity_objective(adapter, 25.0, [1.0] * len(adapter.levels))
    optimizer = torch.optim.Adam(adapter.network.parameters(), lr=1e-3)
    adapter.train()
    for _ in range(20):
        loss, _ = objective({"images": adapter.enhance(images)}, {"image": images})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert before < 25.0
    assert psnr_y() > before + 2.0


@pytest.mark.slow
def test_rave_shifted_trains_along_the_residual_without_its_token_direction(tmp_path):
    recipe = shapes_recipe({"name": "rave", "shifted": True}, {"name": "rave", "enhance_iterations": 2})
    run_recipe(recipe, tmp_path)
    folder = sorted((tmp_path / "run" / "checkpoints").glob("enhance-epoch*"))[-1]
    state = load_file(str(folder / "protocol_state.safetensors"))
    weights = load_file(str(folder / "adapter.safetensors"))
    shifted, plain = state["residual/shifted_vector"], state["residual/vector"]
    torch.testing.assert_close(shifted.norm(), torch.tensor(1.0))
    assert 0.0 < float(shifted @ plain) < 1.0 - 1e-4  # a different direction, still close to v_res
    assert torch.equal(weights["residual"], shifted)
    torch.testing.assert_close(state["residual/shifted_target"], state["residual/m_pos"] @ shifted)


def test_the_residual_embeds_the_training_images_with_clips_preprocessing(rave_run, shapes_clip):
    # RAVE embeds its training images with CLIP's preprocess: bicubic resize of the shorter side, centre
    # crop. Here 32-pixel images go to shapes-clip's 64; the in-graph bilinear resize gives another residual.
    from mmadapt_lit.losses import residual_vector
    from torchvision.transforms.functional import center_crop, normalize, pil_to_tensor, resize

    recipe = shapes_recipe({"name": "rave"}, {"name": "rave"})
    split = recipe_bundle(recipe).split("train")
    prep = shapes_clip.preprocessing

    def features(key, bilinear=False):
        pixels = []
        for i in range(len(split)):
            image = split.load(i)[key]
            if bilinear:
                tensor = pil_to_tensor(image).float()[None] / 255
                pixels.append(torch.nn.functional.interpolate(tensor, size=(prep.size, prep.size), mode="bilinear")[0])
            else:
                shown = center_crop(resize(image, prep.size, interpolation=Image.BICUBIC), prep.size)
                pixels.append(pil_to_tensor(shown).float() / 255)
        with torch.no_grad():
            return shapes_clip.encode_image(normalize(torch.stack(pixels), prep.mean, prep.std), normalize=True)

    state = load_file(str(next((rave_run / "checkpoints").glob("enhance-epoch*")) / "protocol_state.safetensors"))
    expected = residual_vector(features("target"), features("image"))["residual"]
    bilinear = residual_vector(features("target", True), features("image", True))["residual"]
    # PIL resizes 8-bit images and the run float ones: they agree to about 1e-3, a bilinear resize does not.
    torch.testing.assert_close(state["residual/vector"], expected, atol=2e-3, rtol=0)
    assert float((state["residual/vector"] - bilinear).abs().max()) > 1e-2


def test_the_exposure_metric_reports_blown_out_pixels_only_where_targets_exist():
    from mmadapt_lit.exposure import ExposureMetric

    metric = ExposureMetric()
    metric.reset()
    output, target = torch.full((1, 3, 4, 5), 0.5), torch.full((1, 3, 4, 5), 0.5)
    output[..., :2, :] = 1.0  # two rows pushed to white ...
    target[..., 0, :] = 1.0  # ... of which one is white in the target
    metric.update({"images": output}, {"target": target})
    assert metric.compute()["blown_out"] == 0.25
    metric.reset()
    metric.update({"images": output}, {})
    assert "blown_out" not in metric.compute() and metric.compute()["over_exposed"] == 0.5
