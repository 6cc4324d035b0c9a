"""mmadapt hooks of mmadapt-deep: the ``ivlp`` and ``maple`` adapters and ``adapt bench deep``.

Registration only, by reference: each module is imported when a recipe builds its component.
"""

from __future__ import annotations

from collections.abc import Callable

from mmadapt import hookimpl

from .config import IvlpConfig, MapleConfig


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``ivlp`` and ``maple``."""
    register("ivlp", "mmadapt_deep.ivlp:Ivlp", IvlpConfig,
             "IVLP: independent learned text and image tokens at the first J layers of both towers")
    register("maple", "mmadapt_deep.maple:Maple", MapleConfig,
             "MaPLe: deep text prompts, image tokens coupled to them by a linear map per layer (CVPR 2023)")


@hookimpl
def register_benchmarks(register: Callable[..., None]) -> None:
    """Register ``deep``: ``adapt bench deep``, a MaPLe step against the 77-position reference and a CoOp step."""
    register("deep", "mmadapt_deep.bench:main",
             "one maple training step against the reference computation and a CoOp step: time and memory",
             add_arguments="mmadapt_deep.bench:add_arguments")
