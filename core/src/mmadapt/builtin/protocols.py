"""Builtin protocols: evaluation only, train-then-evaluate, and base-to-novel generalisation."""

from __future__ import annotations

from dataclasses import dataclass

from mmadapt.hookspecs import hookimpl


@dataclass
class EvalOnlyConfig:
    """``protocol: eval-only``: the split to evaluate."""

    split: str = "test"


@dataclass
class StandardConfig:
    """``protocol: standard``: the split to train on and the one to evaluate."""

    train_split: str = "train"
    test_split: str = "test"
    #: Also evaluate before training (``initial/<split>/<metric>``): the zero-shot starting point of
    #: adapters initialised from hand-written prompts.
    evaluate_initial: bool = False


@dataclass
class Base2NovelConfig:
    """``protocol: base2novel``."""

    evaluate_initial: bool = False


def build_eval_only(config):
    """The ``eval-only`` protocol."""
    from .standard_protocols import EvalOnlyProtocol

    return EvalOnlyProtocol(config)


def build_standard(config):
    """The ``standard`` protocol."""
    from .standard_protocols import StandardProtocol

    return StandardProtocol(config)


def build_base2novel(config):
    """The ``base2novel`` protocol."""
    from .standard_protocols import Base2NovelProtocol

    return Base2NovelProtocol(config)


@hookimpl
def register_protocols(register):
    """Register ``eval-only``, ``standard`` and ``base2novel``."""
    register("eval-only", build_eval_only, EvalOnlyConfig, "evaluate only, no training")
    register("standard", build_standard, StandardConfig, "train on the train split, evaluate on the test split")
    register("base2novel", build_base2novel, Base2NovelConfig,
             "train on the first half of the classes, evaluate base and new classes, report the harmonic mean")
