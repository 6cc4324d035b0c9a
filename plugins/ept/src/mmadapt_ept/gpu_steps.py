"""EPT's training step for ``adapt bench gpu``: the text prompt (8 tokens, fusion, projection) on 100 classes.

The image tower runs in the step, as in training from images (the feature cache skips it when it can).
"""

from __future__ import annotations

from mmadapt import Backbone, TrainingStep


def training_steps(backbone: Backbone, batch_size: int, tiny: bool) -> dict[str, TrainingStep]:
    """``{"ept": step}`` on ``backbone``'s device (4 classes at tiny sizes)."""
    from .config import EptConfig
    from .text import Ept

    config = EptConfig(n_ctx=8, truncate=True)
    step = TrainingStep.classification(lambda task: Ept(config, backbone, task), backbone, batch_size,
                                       classes=4 if tiny else 100)
    return {"ept": step}
