"""mmadapt: adapt pretrained vision-language models with parameter-efficient methods.

This is the public API plugins may use. Names that need torch are imported on first access, so
``import mmadapt`` (and ``adapt --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import DataConfig, EvalConfig, TrainConfig, check_choice
from .errors import UserError
from .hookspecs import hookimpl, hookspec
from .plugins import get_plugin_manager

__version__ = "0.1.0"

#: Version of the hook and public-API contract; bumped whenever ``__all__`` or a hook changes.
HOOK_API = 1

_LAZY = {
    "Backbone": "mmadapt.backbone",
    "Adapter": "mmadapt.adapter",
    "Task": "mmadapt.data",
    "DataBundle": "mmadapt.data",
    "Split": "mmadapt.data",
    "sample_few_shot": "mmadapt.data",
    "split_base_new": "mmadapt.data",
}

__all__ = [
    "HOOK_API",
    "Adapter",
    "Backbone",
    "DataBundle",
    "DataConfig",
    "EvalConfig",
    "Split",
    "Task",
    "TrainConfig",
    "UserError",
    "__version__",
    "check_choice",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "sample_few_shot",
    "split_base_new",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmadapt' has no attribute {name!r}")
