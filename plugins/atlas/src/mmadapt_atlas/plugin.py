"""mmadapt hooks of mmadapt-atlas: the ``atlas`` adapter, the ``atlas-tta`` protocol, ``adapt atlas`` and
``adapt bench atlas``.

Registration only, by reference: each module is imported when a recipe builds its component.
"""

from __future__ import annotations

from collections.abc import Callable

from mmadapt import hookimpl

from .config import AtlasConfig, TestTimeConfig


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register ``atlas``."""
    register("atlas", "mmadapt_atlas.adapter:Atlas", AtlasConfig,
             "aTLAS: task vectors over the image tower with learned block-wise coefficients (NeurIPS 2024)")


@hookimpl
def register_protocols(register: Callable[..., None]) -> None:
    """Register ``atlas-tta``."""
    register("atlas-tta", "mmadapt_atlas.tta:TestTimeProtocol", TestTimeConfig,
             "test-time adaptation without labels: trusted zero-shot predictions and weak-to-strong pseudo-labels")


@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    """Register ``adapt atlas`` (``vectors`` and ``merge``)."""
    register("atlas", "mmadapt_atlas.cli:main",
             "aTLAS tools: `adapt atlas vectors RUN_DIR... --out DIR`, `adapt atlas merge RUN_DIR --out FILE`",
             add_arguments="mmadapt_atlas.cli:add_arguments")


@hookimpl
def register_benchmarks(register: Callable[..., None]) -> None:
    """Register ``adapt bench atlas``: time and memory of a training step with N vectors, fp16 vs fp32."""
    register("atlas", "mmadapt_atlas.bench:main", "time and memory of an atlas step with N task vectors, fp16 vs fp32",
             add_arguments="mmadapt_atlas.bench:add_arguments")


@hookimpl
def register_recipes(register: Callable[..., None]) -> None:
    """Ship the recipes in ``recipes/`` (package data): ``adapt run NAME`` runs one."""
    register(__package__)
