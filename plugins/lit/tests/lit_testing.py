"""Helpers of the lit tests: a small ShapesWorld recipe."""

from __future__ import annotations


def shapes_recipe(adapter: dict, protocol: dict, **sections) -> dict:
    """A small ShapesWorld backlit-pairs recipe on shapes-clip at 32 x 32 pixels (seconds on one core)."""
    recipe = {
        "name": "lit-test",
        "seed": 1,
        "backbone": {"name": "shapes-clip"},
        "data": {"name": "shapes", "task": "backlit-pairs", "train_size": 24, "test_size": 8, "image_size": 32},
        "adapter": {"network": "zero-dce++", **adapter},
        "protocol": {
            "warmup_iterations": 4,
            "restart_check_iterations": 2,
            "enhance_iterations": 6,
            "warmup_batch_size": 4,
            "enhance_batch_size": 4,
            "grid_images": 3,
            **protocol,
        },
        "train": {
            "optimizer": "adam",
            "lr": 0.001,
            "weight_decay": 0.001,
            "schedule": "constant",
            "schedule_unit": "step",
            "log_every": 1,
            "batch_size": 4,
            "precision": "fp32",
        },
        "eval": {"metrics": ["psnr", {"name": "psnr", "channel": "y"}, "ssim", "lit-exposure"], "batch_size": 8},
    }
    recipe.update(sections)
    return recipe
