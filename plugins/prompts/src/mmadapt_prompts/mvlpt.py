"""MVLPT's text prompt (MCoOp; Shen et al., arXiv 2211.11720): a CoOp prompt shared across tasks.

Trained on several source datasets with the ``multitask`` protocol, then transferred: a target
recipe names the source run in ``init_from`` and starts from its context.
"""

from __future__ import annotations

import torch
from mmadapt import UserError

from .checkpoints import load_context
from .coop import Coop


class Mvlpt(Coop):
    """CoOp with MCoOp's defaults (16 context tokens, class name in the middle) and ``init_from``."""

    paper = "Shen et al., Multitask Vision-Language Prompt Tuning, arXiv 2211.11720"

    def initial_context(self) -> torch.Tensor:
        """The context of the ``init_from`` run (averaged over its seeds), else CoOp's initialisation."""
        config = self.config
        if not config.init_from:
            return super().initial_context()
        ctx = load_context(config.init_from).to(next(self.backbone.parameters()).device)
        if ctx.ndim != 2 or ctx.shape[-1] != self.backbone.text.width:
            raise UserError(
                f"adapter.init_from: the run's context has shape {tuple(ctx.shape)}; a shared context "
                f"(n_ctx, {self.backbone.text.width}) of this backbone's text width is needed"
            )
        if config.n_ctx is not None and config.n_ctx != ctx.shape[0]:
            raise UserError(f"adapter.n_ctx={config.n_ctx} but the init_from run learned {ctx.shape[0]} context tokens")
        return ctx
