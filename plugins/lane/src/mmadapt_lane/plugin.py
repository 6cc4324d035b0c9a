"""mmadapt hooks of the lane plugin: protocols ``class-incremental`` and ``joint``, adapters ``multi-lane``
and ``seq-prompt``, objectives ``lane-bce`` and ``lane-ce``, and ``adapt bench lane``.

Registration only, by reference: each module is imported when a recipe builds its component.
"""

from __future__ import annotations

from collections.abc import Callable

from mmadapt import hookimpl

from .config import (
    ClassIncrementalConfig,
    JointConfig,
    LaneBceConfig,
    LaneCeConfig,
    MultiLaneConfig,
    SeqPromptConfig,
)


@hookimpl
def register_protocols(register: Callable[..., None]) -> None:
    """Register ``class-incremental`` and ``joint``."""
    register(
        "class-incremental",
        "mmadapt_lane.protocol:ClassIncremental",
        ClassIncrementalConfig,
        "class-incremental tasks from a class order and a B<b>-C<c> split; mAP (multi-label) or accuracy "
        "(single-label) over seen classes",
    )
    register(
        "joint",
        "mmadapt_lane.protocol:Joint",
        JointConfig,
        "the class-incremental split's classes trained all at once: the upper bound",
    )


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``multi-lane`` and ``seq-prompt``."""
    register(
        "multi-lane",
        "mmadapt_lane.multilane:MultiLane",
        MultiLaneConfig,
        "MULTI-LANE: per-task lanes over summarised patch tokens of a frozen ViT (CoLLAs 2024)",
    )
    register(
        "seq-prompt",
        "mmadapt_lane.seqprompt:SeqPrompt",
        SeqPromptConfig,
        "one key/value prompt of a frozen ViT fine-tuned task after task (class-incremental baseline)",
    )


@hookimpl
def register_objectives(register: Callable[..., None]) -> None:
    """Register ``lane-bce`` (multi-label) and ``lane-ce`` (single-label)."""
    register(
        "lane-bce",
        "mmadapt_lane.objective:build_lane_bce",
        LaneBceConfig,
        "binary cross-entropy on the current task's classes only (logits and targets of others set to 0)",
    )
    register(
        "lane-ce",
        "mmadapt_lane.objective:build_lane_ce",
        LaneCeConfig,
        "cross-entropy over the current task's classes only (logits of others set to -inf), single-label",
    )


@hookimpl
def register_benchmarks(register: Callable[..., None]) -> None:
    """Register ``lane``: ``adapt bench lane`` measures one summarised lane against a full-token lane."""
    register(
        "lane",
        "mmadapt_lane.bench:main",
        "MACs and time of one summarised MULTI-LANE lane vs a full-token lane; cost vs tasks",
        add_arguments="mmadapt_lane.bench:add_arguments",
    )


@hookimpl
def register_recipes(register: Callable[..., None]) -> None:
    """Ship the recipes in ``recipes/`` (package data): ``adapt run NAME`` runs one."""
    register(__package__)
