"""Name -> component lookup, with the plugin, distribution and version that registered each one."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import UserError, did_you_mean

KINDS = ("backbone", "adapter", "objective", "dataset", "protocol", "metric", "command", "benchmark")

#: What each first-party plugin (``plugins/`` of the mmadapt repository) registers, so an unknown
#: name can say which package to install. Commands are left out: argparse reports an unknown one.
#: tests/test_plugins.py checks it against what the installed first-party plugins register.
FIRST_PARTY: dict[str, dict[str, tuple[str, ...]]] = {
    "mmadapt-prompts": {
        "adapter": ("cocoop", "coop", "latent-prompt", "mvlpt"),
        "protocol": ("multitask",),
        "benchmark": ("prompts",),
    },
    "mmadapt-shapes": {"backbone": ("shapes-clip",), "dataset": ("shapes",)},
    "mmadapt-kapt": {"adapter": ("kapt",)},
    "mmadapt-ept": {"adapter": ("ept", "ept-visual"), "benchmark": ("ept",)},
    "mmadapt-lit": {
        "adapter": ("clip-lit", "clip-lit-latent", "rave"),
        "protocol": ("clip-lit", "rave"),
        "metric": ("lit-exposure",),
        "benchmark": ("lit",),
    },
    "mmadapt-lane": {
        "adapter": ("multi-lane", "seq-prompt"),
        "objective": ("lane-bce",),
        "protocol": ("class-incremental", "joint"),
        "benchmark": ("lane",),
    },
}

#: Components renamed after 0.1.0 (each old name was also an adapter's), so a recipe with the old
#: name says what to write instead: (kind, old name) -> new name.
RENAMED: dict[tuple[str, str], str] = {
    ("dataset", "coop"): "coop-split",
    ("protocol", "zeroshot"): "eval-only",
}


@dataclass(frozen=True)
class Component:
    """One registered component."""

    kind: str
    name: str
    factory: Callable[..., Any]
    config: type | None
    summary: str
    plugin: str
    distribution: str | None = None
    version: str | None = None

    def build(self, config: Any, *args: Any) -> Any:
        """Call the factory with a validated config instance and the kind's further arguments."""
        return self.factory(config, *args)


class Registry:
    """All components of one plugin manager, keyed by kind and name."""

    def __init__(self) -> None:
        self._components: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
        self.failures: list[Any] = []

    def add(self, component: Component) -> None:
        """Add a component; a second component with the same kind and name is a hard error."""
        self.check_new(component)
        self._components[component.kind][component.name] = component

    def check_new(self, component: Component) -> None:
        """Raise when ``component`` is malformed or its name is already taken."""
        if component.config is not None and not dataclasses.is_dataclass(component.config):
            raise TypeError(
                f"plugin {component.plugin!r}: config of {component.kind} {component.name!r} must be a "
                f"dataclass, got {component.config!r}"
            )
        existing = self._components[component.kind].get(component.name)
        if existing is not None:
            raise ValueError(
                f"{component.kind} {component.name!r} is registered twice: by plugin {existing.plugin!r} "
                f"({existing.distribution or 'builtin'}) and by plugin {component.plugin!r} "
                f"({component.distribution or 'builtin'}); uninstall one of them"
            )

    def names(self, kind: str) -> list[str]:
        """Sorted names of the registered components of one kind."""
        return sorted(self._components[kind])

    def all(self, kind: str) -> list[Component]:
        """The registered components of one kind, sorted by name."""
        return [self._components[kind][n] for n in self.names(kind)]

    def find(self, kind: str, name: str) -> Component | None:
        """The component, or None when no plugin registered it."""
        return self._components[kind].get(name)

    def get(self, kind: str, name: str) -> Component:
        """The component, or a ``UserError`` that says what is installed and what to install."""
        component = self.find(kind, name)
        if component is None:
            raise UserError(self.explain_missing(kind, name))
        return component

    def explain_missing(self, kind: str, name: str, with_failures: bool = True) -> str:
        """A message for an unknown component: installed names, the package to install, load errors."""
        installed = self.names(kind)
        renamed = RENAMED.get((kind, name))
        if renamed is not None:
            return f"{kind} {name!r} was renamed to {renamed!r} (the adapter {name!r} keeps its name)"
        message = f"unknown {kind} {name!r}{did_you_mean(name, installed)}; installed: {', '.join(installed) or 'none'}"
        for package, provided in FIRST_PARTY.items():
            if name in provided.get(kind, ()):
                message += f". {package} provides it: pip install {package}"
        if with_failures:
            message += self.failure_report()
        return message

    def failure_report(self) -> str:
        """One line per plugin that failed to load, or an empty string."""
        return "".join(f"\n  plugin {f.label} failed to load: {f.error}" for f in self.failures)
