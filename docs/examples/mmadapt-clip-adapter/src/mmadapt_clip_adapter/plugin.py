"""mmadapt hooks of mmadapt-clip-adapter: registers the ``clip-adapter`` adapter.

pyproject.toml names this module as the plugin's entry point. It must stay cheap to import (mmadapt
imports every plugin when ``adapt`` starts): the config is a plain dataclass, and torch loads only
inside the factory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from mmadapt import hookimpl

from .config import ClipAdapterConfig

if TYPE_CHECKING:  # names for type hints only: importing them at run time would load torch
    from mmadapt import Backbone, Task

    from .adapter import ClipAdapter


def build_clip_adapter(config: ClipAdapterConfig, backbone: Backbone, task: Task) -> ClipAdapter:
    """Build the adapter from its validated config, the frozen backbone and the task."""
    from .adapter import ClipAdapter

    return ClipAdapter(config, backbone, task)


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register the adapter under the name recipes use: ``adapter: {name: clip-adapter}``."""
    register(
        "clip-adapter",
        build_clip_adapter,
        ClipAdapterConfig,
        "residual bottleneck MLP on image features (CLIP-Adapter)",
    )
