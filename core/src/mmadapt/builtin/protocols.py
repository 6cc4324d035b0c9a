"""Builtin protocols: zero-shot evaluation, train-then-evaluate, and base-to-novel generalisation."""

from __future__ import annotations

from dataclasses import dataclass

from mmadapt.hookspecs import hookimpl


@dataclass
class ZeroShotProtocolConfig:
    split: str = "test"


@dataclass
class StandardConfig:
    train_split: str = "train"
    test_split: str = "test"
    #: Also evaluate before training (``initial/<split>/<metric>``): the zero-shot starting point of
    #: adapters initialised from hand-written prompts.
    evaluate_initial: bool = False


@dataclass
class Base2NovelConfig:
    evaluate_initial: bool = False


def build_zeroshot(config):
    from .protocol_impl import ZeroShotProtocol

    return ZeroShotProtocol(config)


def build_standard(config):
    from .protocol_impl import StandardProtocol

    return StandardProtocol(config)


def build_base2novel(config):
    from .protocol_impl import Base2NovelProtocol

    return Base2NovelProtocol(config)


@hookimpl
def register_protocols(register):
    register("eval-only", build_zeroshot, ZeroShotProtocolConfig, "evaluate only, no training")
    register("standard", build_standard, StandardConfig, "train on the train split, evaluate on the test split")
    register("base2novel", build_base2novel, Base2NovelConfig,
             "train on the first half of the classes, evaluate base and new classes, report the harmonic mean")
