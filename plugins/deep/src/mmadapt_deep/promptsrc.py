"""PromptSRC (Khattak et al., "Self-regulating Prompts: Foundational Model Adaptation without Forgetting", ICCV 2023).

The prompts are IVLP's (n_t = n_v = 4 tokens at each of the first J = 9 layers of both towers); what
PromptSRC adds is how they are trained: the ``promptsrc`` objective pulls the prompted features and
logits toward frozen CLIP's (this adapter reports them, :class:`~mmadapt_deep.deep.DeepPromptAdapter`),
and Gaussian prompt aggregation (:mod:`mmadapt_deep.aggregation`) replaces the prompts after the last
epoch with their Gaussian-weighted mean over the epochs.
"""

from __future__ import annotations

from mmadapt import Backbone, Task

from .aggregation import GaussianPromptAggregation
from .config import PromptSRCConfig
from .ivlp import Ivlp


class PromptSRC(Ivlp):
    """IVLP prompts averaged over epochs by Gaussian prompt aggregation (``gpa``); train with objective ``promptsrc``.

    The aggregation's running sums are persistent buffers (``aggregation.running_<i>``, one per prompt
    tensor in :meth:`parameter_groups` order), so checkpoints hold them and a killed run resumes to the
    same prompts.
    """

    def __init__(self, config: PromptSRCConfig, backbone: Backbone, task: Task) -> None:
        super().__init__(config, backbone, task)
        prompts = [p for group in self.parameter_groups().values() for p in group]
        self.aggregation = GaussianPromptAggregation(prompts, config.gpa_mean, config.gpa_std) if config.gpa else None

    def on_epoch_end(self, stage: str, epoch: int, epochs: int) -> None:
        """Add this epoch's prompts to the Gaussian-weighted sums; after the last epoch, load their weighted mean."""
        if self.aggregation is not None:
            self.aggregation.step(epoch, epochs)
            self.clear_eval_cache()
