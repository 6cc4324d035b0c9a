"""Image-to-image end to end: paired folders of odd sizes, full-resolution batches, psnr/ssim, training on lists."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from mmadapt import Adapter, hookimpl
from mmadapt.testing import run_recipe, tiny_recipe
from PIL import Image

#: (width, height) of the pairs: odd sizes, different in one batch.
SIZES = {"a": (131, 97), "b": (80, 64)}


def _paired_folders(root, darker_targets=False):
    """``root/<split>/{input,target}/<stem>.png``; targets equal their inputs (or are brighter)."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for stem, (width, height) in SIZES.items():
            pixels = rng.integers(40, 120, size=(height, width, 3), dtype=np.uint8)
            target = pixels * 2 if darker_targets else pixels
            for folder, image in (("input", pixels), ("target", target)):
                (root / split / folder).mkdir(parents=True, exist_ok=True)
                Image.fromarray(image.astype(np.uint8)).save(root / split / folder / f"{stem}.png")
    return root


@dataclass
class GainConfig:
    """Test adapter: multiply the input images by ``gain`` (trainable when ``train``)."""

    gain: float = 1.0
    train: bool = False


class GainAdapter(Adapter):
    """Returns ``{"images": gain * batch["image"]}``, per image, and records the shapes it received."""

    received: list[tuple[int, ...]] = []

    def __init__(self, config, backbone, task):
        super().__init__(config, backbone, task)
        for param in backbone.parameters():
            param.requires_grad_(False)
        self.gain = torch.nn.Parameter(torch.tensor(float(config.gain)), requires_grad=config.train)

    def forward(self, batch):
        images = batch["image"]
        type(self).received += [tuple(image.shape) for image in images]
        if isinstance(images, torch.Tensor):
            return {"images": images * self.gain}
        return {"images": [image * self.gain for image in images]}


def _l1(config, adapter):
    def loss(outputs, batch):
        pairs = list(zip(outputs["images"], batch["target"]))
        value = sum((image - target).abs().mean() for image, target in pairs) / len(pairs)
        return value, {}

    return loss


class _ImagePlugin:
    @hookimpl
    def register_adapters(self, register):
        register("gain", lambda config, backbone, task: GainAdapter(config, backbone, task), GainConfig,
                 "test: images times a gain")

    @hookimpl
    def register_objectives(self, register):
        register("l1-images", _l1, None, "test: mean absolute error of output images against targets")


@pytest.fixture
def image_plugin(tiny_plugin, register_plugin):
    register_plugin(_ImagePlugin(), "image-plugin")
    GainAdapter.received = []


def _eval_recipe(root, gain):
    return tiny_recipe(
        data={"name": "paired-folders", "root": str(root)},
        adapter={"name": "gain", "gain": gain},
        eval={"metrics": ["psnr", "ssim"], "batch_size": 2},
    )


def test_identity_scores_the_psnr_cap_and_ssim_one_at_full_resolution(image_plugin, tmp_path):
    from mmadapt.metrics import PSNR_CAP_DB

    summary = run_recipe(_eval_recipe(_paired_folders(tmp_path / "data"), gain=1.0), tmp_path / "identity")
    assert summary["metrics"]["test/psnr"] == PSNR_CAP_DB
    assert summary["metrics"]["test/ssim"] == pytest.approx(1.0, abs=1e-9)
    # One batch of both pairs, each at its file's size: no resize, no crop (tiny-clip's size is 32).
    assert sorted(GainAdapter.received) == sorted((3, h, w) for w, h in SIZES.values())


def test_darkening_lowers_psnr_and_ssim(image_plugin, tmp_path):
    summary = run_recipe(_eval_recipe(_paired_folders(tmp_path / "data"), gain=0.5), tmp_path / "dark")
    assert summary["metrics"]["test/psnr"] < 20 and summary["metrics"]["test/ssim"] < 0.9


def test_training_on_mixed_size_batches_learns_the_gain(image_plugin, tmp_path):
    root = _paired_folders(tmp_path / "data", darker_targets=True)
    recipe = tiny_recipe(
        data={"name": "paired-folders", "root": str(root), "augment": "crop-flip"},
        adapter={"name": "gain", "gain": 1.0, "train": True},
        objective={"name": "l1-images"},
        protocol={"name": "standard", "evaluate_initial": True},
        train={"epochs": 30, "batch_size": 2, "optimizer": "adam", "lr": 0.05, "schedule": "constant"},
        eval={"metrics": ["psnr"], "batch_size": 2},
    )
    metrics = run_recipe(recipe, tmp_path / "train")["metrics"]
    assert metrics["test/psnr"] > metrics["initial/test/psnr"] + 10  # the gain moved from 1 towards 2
    crops = GainAdapter.received[: 30 * len(SIZES)]
    assert len(set(crops)) > len(SIZES)  # random crops of the full-resolution pairs, not one fixed size


def test_shapesworld_backlit_pairs_take_the_image_to_image_path(image_plugin, tmp_path):
    recipe = tiny_recipe(
        data={"name": "shapes", "task": "backlit-pairs", "train_size": 12, "test_size": 4, "image_size": 48},
        adapter={"name": "gain", "gain": 1.0},
        eval={"metrics": ["psnr", "ssim"], "batch_size": 4},
    )
    metrics = run_recipe(recipe, tmp_path)["metrics"]
    assert GainAdapter.received == [(3, 48, 48)] * 4  # rendered size, not tiny-clip's 32: no resize or crop
    # The input is the backlit rendering and the target the well-lit one, so the identity is no match.
    assert metrics["test/psnr"] < 30 and metrics["test/ssim"] < 0.95


def test_classifiers_see_full_resolution_images_prepared_in_the_graph(tiny_plugin, tmp_path):
    """Frozen-feature adapters on an image-to-image task: each image resized and normalised by the tower."""
    from mmadapt.adapter import encode_batch_images
    from mmadapt.testing_models import tiny_openclip_backbone

    backbone = tiny_openclip_backbone("vit", 0)
    images = [torch.rand(3, 97, 131), torch.rand(3, 64, 80)]
    one_by_one = torch.cat([backbone.encode_image(backbone.prepare_pixels(i.unsqueeze(0))) for i in images])
    assert torch.allclose(encode_batch_images(backbone, images, "image-to-image"), one_by_one, atol=1e-6)
    same_size = torch.rand(2, 3, 40, 50)
    assert torch.allclose(encode_batch_images(backbone, same_size, "image-to-image"),
                          encode_batch_images(backbone, list(same_size), "image-to-image"), atol=1e-6)

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name, level in (("dark", 30), ("bright", 220)):
            for i, (width, height) in enumerate(SIZES.values()):
                (tmp_path / split / name).mkdir(parents=True, exist_ok=True)
                pixels = np.clip(rng.normal(level, 10, size=(height, width, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(tmp_path / split / name / f"{i}.png")
    recipe = tiny_recipe(data={"name": "unpaired-folders", "root": str(tmp_path)}, protocol={"name": "standard"},
                         adapter={"name": "linear-probe"}, eval={"batch_size": 4},
                         train={"epochs": 30, "optimizer": "adamw", "lr": 0.05, "batch_size": 4})
    summary = run_recipe(recipe, tmp_path / "out")
    assert summary["metrics"]["test/accuracy"] == 100.0  # dark vs bright: separable once the tower sees them
