"""mmadapt hooks of the lane plugin: protocols ``class-incremental`` and ``joint``, adapters ``multi-lane``
and ``seq-prompt``, objective ``lane-bce`` and ``adapt bench lane``.

Cheap to import: configs and hooks only; torch loads inside the factories.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from mmadapt import hookimpl

from .config import ClassIncrementalConfig, JointConfig, LaneBceConfig, MultiLaneConfig, SeqPromptConfig

if TYPE_CHECKING:
    from mmadapt import Adapter, Backbone, Protocol, Task


def build_class_incremental(config: ClassIncrementalConfig) -> Protocol:
    """The ``class-incremental`` protocol."""
    from .protocol import ClassIncremental

    return ClassIncremental(config)


def build_joint(config: JointConfig) -> Protocol:
    """The ``joint`` protocol."""
    from .protocol import Joint

    return Joint(config)


def build_multi_lane(config: MultiLaneConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``multi-lane`` adapter (torch loads here, not when the plugin is imported)."""
    from .multilane import MultiLane

    return MultiLane(config, backbone, task)


def build_seq_prompt(config: SeqPromptConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``seq-prompt`` adapter."""
    from .seqprompt import SeqPrompt

    return SeqPrompt(config, backbone, task)


def build_lane_bce(config: LaneBceConfig, adapter: Adapter):
    """The ``lane-bce`` objective."""
    from .objective import build_lane_bce as build

    return build(config, adapter)


def _bench(args: argparse.Namespace) -> dict[str, float]:
    from .bench import main

    return main(args)


def _bench_arguments(parser: argparse.ArgumentParser) -> None:
    from .bench import add_arguments

    add_arguments(parser)


@hookimpl
def register_protocols(register: Callable[..., None]) -> None:
    """Register ``class-incremental`` and ``joint``."""
    register(
        "class-incremental",
        build_class_incremental,
        ClassIncrementalConfig,
        "multi-label class-incremental tasks from a class order and a B<b>-C<c> split; mAP over seen classes",
    )
    register(
        "joint", build_joint, JointConfig, "the class-incremental split's classes trained all at once: the upper bound"
    )


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``multi-lane`` and ``seq-prompt``."""
    register(
        "multi-lane",
        build_multi_lane,
        MultiLaneConfig,
        "MULTI-LANE: per-task lanes over summarised patch tokens of a frozen ViT (CoLLAs 2024)",
    )
    register(
        "seq-prompt",
        build_seq_prompt,
        SeqPromptConfig,
        "one key/value prompt of a frozen ViT fine-tuned task after task (class-incremental baseline)",
    )


@hookimpl
def register_objectives(register: Callable[..., None]) -> None:
    """Register ``lane-bce``."""
    register(
        "lane-bce",
        build_lane_bce,
        LaneBceConfig,
        "binary cross-entropy on the current task's classes only (logits and targets of others set to 0)",
    )


@hookimpl
def register_benchmarks(register: Callable[..., None]) -> None:
    """Register ``lane``: ``adapt bench lane`` measures one summarised lane against a full-token lane."""
    register(
        "lane",
        _bench,
        "MACs and time of one summarised MULTI-LANE lane vs a full-token lane; cost vs tasks",
        add_arguments=_bench_arguments,
    )
