"""Helpers of the lane plugin's tests: an incremental task, adapters built through the plugin, batches."""

from __future__ import annotations

import torch
from mmadapt_lane.config import MultiLaneConfig, SeqPromptConfig
from mmadapt_lane.multilane import MultiLane
from mmadapt_lane.seqprompt import SeqPrompt
from mmadapt_lane.tasks import IncrementalTask

#: Four tasks of 3, 2, 2 and 1 classes (uneven, so blocks are told apart by size too).
TASK_SIZES = [3, 2, 2, 1]


def incremental_task(sizes=TASK_SIZES) -> IncrementalTask:
    """A multi-label task of ``sum(sizes)`` classes cut into ``sizes``."""
    names = [f"class{i}" for i in range(sum(sizes))]
    return IncrementalTask(names, kind="multi-label", task_sizes=list(sizes))


def make_adapter(backbone, task=None, name: str = "multi-lane", seed: int = 0, **options):
    """The plugin's ``name`` adapter with small defaults (S = P = 4 in both blocks), built after seeding."""
    if name == "multi-lane":
        options = {"num_selectors": 4, "prompt_length": 4, "prompt_layers": 2, **options}
        config, factory = MultiLaneConfig(**options), MultiLane
    else:
        options = {"prompt_length": 4, "prompt_layers": 2, **options}
        config, factory = SeqPromptConfig(**options), SeqPrompt
    torch.manual_seed(seed)
    return factory(config, backbone, task or incremental_task())


def images(backbone, count: int = 6, seed: int = 0) -> torch.Tensor:
    """Random preprocessed images for ``backbone``."""
    size = backbone.preprocessing.size
    return torch.randn(count, 3, size, size, generator=torch.Generator().manual_seed(seed))


def labels(task, count: int = 6, seed: int = 1) -> torch.Tensor:
    """Random multi-hot targets over ``task``'s classes."""
    return (torch.rand(count, task.n_classes, generator=torch.Generator().manual_seed(seed)) > 0.5).float()
