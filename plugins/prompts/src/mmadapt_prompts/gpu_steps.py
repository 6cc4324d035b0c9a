"""CoOp's training step for ``adapt bench gpu``: 16 learned context tokens, 100 classes, cross-entropy."""

from __future__ import annotations

from mmadapt import Backbone, TrainingStep


def training_steps(backbone: Backbone, batch_size: int, tiny: bool) -> dict[str, TrainingStep]:
    """``{"coop": step}`` on ``backbone``'s device (4 classes at tiny sizes)."""
    from .config import CoopConfig
    from .coop import Coop

    step = TrainingStep.classification(lambda task: Coop(CoopConfig(n_ctx=16), backbone, task), backbone, batch_size,
                                       classes=4 if tiny else 100)
    return {"coop": step}
