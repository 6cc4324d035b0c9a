"""The keys of the ``clip-adapter`` adapter's recipe section, as a dataclass.

The core validates a recipe's ``adapter:`` section against these fields (unknown keys, wrong types,
``__post_init__`` errors) before anything is built. This module imports nothing heavy: the plugin
module imports it when mmadapt starts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ClipAdapterConfig:
    """Settings of the residual bottleneck MLP (CLIP-Adapter's visual adapter)."""

    #: The MLP's hidden width is ``embed_dim // reduction`` (4 in the paper).
    reduction: int = 4
    #: Residual ratio: the share of the adapted feature in the blend with the frozen one (the paper
    #: finds about 0.2 best for generic datasets like ImageNet, 0.6 to 0.8 for fine-grained ones).
    alpha: float = 0.2
    #: Prompt templates with one ``{}`` for the class name; ``None``: the dataset's templates.
    templates: list[str] | None = None

    def __post_init__(self) -> None:
        # A ValueError that names the key becomes a recipe error pointing at adapter.<key>.
        if self.reduction < 1:
            raise ValueError(f"adapter.reduction must be at least 1; got {self.reduction}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"adapter.alpha must be between 0 and 1; got {self.alpha}")
