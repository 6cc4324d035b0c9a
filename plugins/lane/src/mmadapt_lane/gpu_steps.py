"""MULTI-LANE's training step for ``adapt bench gpu``: the first task's lane with the lane-bce loss.

Ten tasks of ten classes (two of two at tiny sizes), the recipe's lane sizes (10 selectors, prompts of
10 tokens in the first 2 layers).
"""

from __future__ import annotations

import torch
from mmadapt import Backbone, TrainingStep


def training_steps(backbone: Backbone, batch_size: int, tiny: bool) -> dict[str, TrainingStep]:
    """``{"multi-lane": step}`` on ``backbone``'s device."""
    from .config import MultiLaneConfig
    from .multilane import MultiLane
    from .objective import build_lane_bce
    from .tasks import IncrementalTask

    tasks, per_task = (2, 2) if tiny else (10, 10)
    device = next(backbone.parameters()).device
    task = IncrementalTask([f"class {i}" for i in range(tasks * per_task)], kind="multi-label",
                           task_sizes=[per_task] * tasks)
    adapter = MultiLane(MultiLaneConfig(num_selectors=10, prompt_length=10, prompt_layers=2), backbone, task)
    adapter = adapter.to(device)
    adapter.start_task(0)
    objective = build_lane_bce(None, adapter)
    size = backbone.preprocessing.size
    batch = {"image": torch.randn(batch_size, 3, size, size, device=device),
             "label": (torch.rand(batch_size, tasks * per_task, device=device) < 0.2).float()}

    def lane_bce(model: torch.nn.Module, batch: dict) -> torch.Tensor:
        return objective(model(batch), batch)[0]

    return {"multi-lane": TrainingStep(adapter, batch, lane_bce, batch_size)}
