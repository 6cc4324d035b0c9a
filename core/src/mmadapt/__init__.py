"""mmadapt: adapt pretrained vision-language models with parameter-efficient methods.

This is the public API plugins may use. Names that need torch are imported on first access, so
``import mmadapt`` (and ``adapt --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import DataConfig, EvalConfig, TrainConfig, check_choice, nested_section, nested_sections
from .errors import UserError
from .hookspecs import hookimpl, hookspec
from .plugins import get_plugin_manager

__version__ = "0.1.0"

#: Version of the hook and public-API contract; bumped whenever ``__all__`` or a hook changes.
HOOK_API = 5

_LAZY = {
    "Adapter": "mmadapt.adapter",
    "Backbone": "mmadapt.backbone",
    "Preprocessing": "mmadapt.backbone",
    "ImageTower": "mmadapt.towers",
    "Prefix": "mmadapt.towers",
    "TextTower": "mmadapt.towers",
    "TokenImageTower": "mmadapt.towers",
    "SharedPrefixRun": "mmadapt.towers",
    "TokenRun": "mmadapt.towers",
    "TokenTextTower": "mmadapt.towers",
    "TokenTower": "mmadapt.towers",
    "TransformerBlock": "mmadapt.towers",
    "OpenClipBackbone": "mmadapt.builtin.openclip",
    "TimmBackbone": "mmadapt.builtin.timm_vit",
    "random_openclip_backbone": "mmadapt.builtin.benchmarking",
    "activation_bytes": "mmadapt.bench_measures",
    "available_bytes": "mmadapt.bench_measures",
    "format_gib": "mmadapt.bench_measures",
    "measure_steps": "mmadapt.bench_measures",
    "print_step_table": "mmadapt.bench_measures",
    "StepMeasures": "mmadapt.bench_measures",
    "wall_and_cpu_seconds": "mmadapt.bench_measures",
    "TrainingStep": "mmadapt.step_timing",
    "zeroshot_classifier": "mmadapt.zeroshot",
    "ZeroShotClasses": "mmadapt.zeroshot",
    "BadImageError": "mmadapt.data",
    "DataBundle": "mmadapt.data",
    "DatasetRoot": "mmadapt.data",
    "FileSplit": "mmadapt.data",
    "PairedTransform": "mmadapt.data",
    "Split": "mmadapt.data",
    "Task": "mmadapt.data",
    "TensorSplit": "mmadapt.tensor_split",
    "apply_few_shot": "mmadapt.data",
    "base_new_bundles": "mmadapt.data",
    "build_transforms": "mmadapt.data",
    "check_label": "mmadapt.data",
    "collate": "mmadapt.data",
    "list_images": "mmadapt.data",
    "open_image": "mmadapt.data",
    "prompt_name": "mmadapt.data",
    "sample_few_shot": "mmadapt.data",
    "select_classes": "mmadapt.data",
    "split_base_new": "mmadapt.data",
    "split_transforms": "mmadapt.data",
    "ENGLISH_STOP_WORDS": "mmadapt.knowledge",
    "apply_knowledge": "mmadapt.knowledge",
    "match_name": "mmadapt.knowledge",
    "read_knowledge_file": "mmadapt.knowledge",
    "task_keywords": "mmadapt.knowledge",
    "tfidf_keywords": "mmadapt.knowledge",
    "Run": "mmadapt.engine",
    "Checkpoint": "mmadapt.checkpoints",
    "CorruptCheckpointError": "mmadapt.checkpoints",
    "RunState": "mmadapt.checkpoints",
    "final_checkpoint": "mmadapt.checkpoints",
    "FinishedRun": "mmadapt.runner",
    "load_run": "mmadapt.runner",
    "LoadedAdapter": "mmadapt.exported",
    "load_adapter": "mmadapt.exported",
    "Section": "mmadapt.recipe",
    "SectionError": "mmadapt.recipe",
    "validate_section": "mmadapt.recipe",
    "validate_sections": "mmadapt.recipe",
    "Metric": "mmadapt.metrics",
    "harmonic_mean": "mmadapt.metrics",
    "image_psnr": "mmadapt.metrics",
    "draw_training_curves": "mmadapt.plots",
    "Protocol": "mmadapt.protocol",
    "check_adapter_interface": "mmadapt.protocol",
    "CLASS_TOKEN_POSITIONS": "mmadapt.config",
    "check_prompt_context": "mmadapt.config",
    "HandwrittenTextFeatures": "mmadapt.prompting",
    "PromptLearner": "mmadapt.prompting",
    "new_context": "mmadapt.prompting",
    "token_counts": "mmadapt.prompting",
    "word_context": "mmadapt.prompting",
}

# A literal list, so linters see the re-exports; the lazy names are added below.
__all__ = [
    "HOOK_API",
    "DataConfig",
    "EvalConfig",
    "TrainConfig",
    "UserError",
    "__version__",
    "check_choice",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "nested_section",
    "nested_sections",
]
__all__ += _LAZY
__all__.sort()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmadapt' has no attribute {name!r}")
