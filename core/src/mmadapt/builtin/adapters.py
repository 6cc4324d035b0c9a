"""Builtin adapters: zero-shot CLIP, linear probe and LoRA (PEFT)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mmadapt.config import check_choice
from mmadapt.hookspecs import hookimpl

if TYPE_CHECKING:
    from mmadapt.adapter import Adapter
    from mmadapt.backbone import Backbone
    from mmadapt.data import Task


@dataclass
class ZeroShotConfig:
    """Hand-written prompts; several templates are averaged (prompt ensembling)."""

    #: Templates with one ``{}`` for the class name; default: the dataset's templates.
    templates: list[str] | None = None


@dataclass
class LinearProbeConfig:
    """A linear (logistic-regression) head on frozen, L2-normalised image features."""

    #: ``zeros``, or ``zeroshot`` to start from the zero-shot classifier (needs a text tower).
    init: str = "zeros"

    def __post_init__(self) -> None:
        check_choice("adapter", "init", self.init, ("zeros", "zeroshot"))


@dataclass
class LoraConfig:
    """LoRA (HF PEFT) on chosen modules of either tower; classes come from zero-shot text features."""

    tower: str = "vision"
    #: Name suffixes inside the tower: modules (``mlp.c_fc``) get LoRA layers, parameters (``*weight``)
    #: get LoRA parametrisations (``attn.in_proj_weight``: query, key and value of open_clip attention).
    targets: list[str] = field(default_factory=lambda: ["attn.in_proj_weight", "mlp.c_fc", "mlp.c_proj"])
    r: int = 4
    alpha: float = 8.0
    dropout: float = 0.0
    templates: list[str] | None = None

    def __post_init__(self) -> None:
        check_choice("adapter", "tower", self.tower, ("vision", "text", "both"))
        if self.r < 1:
            raise ValueError(f"adapter.r must be a positive LoRA rank; got {self.r}")
        if self.dropout and any(t.endswith("weight") for t in self.targets):
            raise ValueError(
                "adapter.dropout must be 0 when adapter.targets name parameters (*weight): PEFT applies "
                "those as weight parametrisations, which have no input to drop"
            )


def build_zeroshot(config: ZeroShotConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``zeroshot`` adapter (torch loads here, not when the plugin module is imported)."""
    from .baselines import ZeroShot

    return ZeroShot(config, backbone, task)


def build_linear_probe(config: LinearProbeConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``linear-probe`` adapter."""
    from .baselines import LinearProbe

    return LinearProbe(config, backbone, task)


def build_lora(config: LoraConfig, backbone: Backbone, task: Task) -> Adapter:
    """The ``lora`` adapter (PEFT loads here)."""
    from .baselines import Lora

    return Lora(config, backbone, task)


@hookimpl
def register_adapters(register: Callable[..., None]) -> None:
    """Register the builtin adapters ``zeroshot``, ``linear-probe`` and ``lora``."""
    register("zeroshot", build_zeroshot, ZeroShotConfig, "zero-shot CLIP with hand-written (ensembled) prompts")
    register("linear-probe", build_linear_probe, LinearProbeConfig, "logistic head on frozen image features")
    register("lora", build_lora, LoraConfig, "PEFT LoRA on attention/MLP layers of either tower")
