"""Name -> component lookup, with the plugin, distribution and version that registered each one."""

from __future__ import annotations

import dataclasses
import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import PluginLoadError, UserError, did_you_mean

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
    "mmadapt-shapes": {"backbone": ("shapes-clip",), "dataset": ("shapes",), "benchmark": ("shapes",)},
    "mmadapt-kapt": {"adapter": ("kapt",)},
    "mmadapt-ept": {"adapter": ("ept", "ept-visual"), "benchmark": ("ept",)},
    "mmadapt-atlas": {"adapter": ("atlas",), "protocol": ("atlas-tta",), "benchmark": ("atlas",)},
    "mmadapt-lit": {
        "adapter": ("clip-lit", "clip-lit-latent", "rave"),
        "protocol": ("clip-lit", "rave"),
        "metric": ("lit-exposure",),
        "benchmark": ("lit",),
    },
    "mmadapt-lane": {
        "adapter": ("multi-lane", "seq-prompt"),
        "objective": ("lane-bce", "lane-ce"),
        "protocol": ("class-incremental", "joint"),
        "benchmark": ("lane",),
    },
    "mmadapt-deep": {"adapter": ("ivlp", "maple", "mmrl", "promptsrc"), "objective": ("mmrl", "promptsrc"),
                     "benchmark": ("deep",)},
}

#: Components renamed after 0.1.0 (each old name was also an adapter's), so a recipe with the old
#: name says what to write instead: (kind, old name) -> new name.
RENAMED: dict[tuple[str, str], str] = {
    ("dataset", "coop"): "coop-split",
    ("protocol", "zeroshot"): "eval-only",
}


#: A component's factory: a reference ``"package.module:object"`` (entry-point syntax; the module is
#: imported when the component is first built), or the callable itself.
Factory = str | Callable[..., Any]

_REFERENCE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def is_reference(factory: object) -> bool:
    """Whether ``factory`` is a well-formed reference ``package.module:object`` (``object`` may be dotted)."""
    return isinstance(factory, str) and _REFERENCE.fullmatch(factory) is not None


def import_reference(reference: str) -> Any:
    """The object that ``package.module:attribute.path`` names, importing its module."""
    module_name, _, path = reference.partition(":")
    target: Any = importlib.import_module(module_name)
    for attribute in path.split("."):
        target = getattr(target, attribute)
    return target


@dataclass(frozen=True)
class Component:
    """One registered component.

    ``factory`` (and a command's or benchmark's ``add_arguments``) is a reference or a callable; a
    reference is imported by :meth:`load` when the component is first built, so registering stays cheap.
    """

    kind: str
    name: str
    factory: Factory
    config: type | None
    summary: str
    plugin: str
    distribution: str | None = None
    version: str | None = None
    #: Commands and benchmarks: fills their ``argparse`` parser; None when they take no options.
    add_arguments: Factory | None = None

    def load(self) -> Callable[..., Any]:
        """The factory (for a command its handler, for a benchmark its ``run``), imported when a reference."""
        return self._resolve(self.factory, "factory")

    def load_arguments(self) -> Callable[[Any], None] | None:
        """``add_arguments`` of a command or benchmark, imported when a reference; None without one."""
        return None if self.add_arguments is None else self._resolve(self.add_arguments, "add_arguments")

    def build(self, config: Any, *args: Any) -> Any:
        """Call the factory with a validated config instance and the kind's further arguments."""
        return self.load()(config, *args)

    def _resolve(self, factory: Factory, role: str) -> Callable[..., Any]:
        if not isinstance(factory, str):
            return factory
        try:
            target = import_reference(factory)
        except Exception as exc:
            raise PluginLoadError(
                f"{self.kind} {self.name!r} of plugin {self.plugin!r} ({self.distribution or 'builtin'}): its {role} "
                f"{factory!r} failed to import: {type(exc).__name__}: {exc}"
            ) from exc
        if not callable(target):
            raise PluginLoadError(
                f"{self.kind} {self.name!r} of plugin {self.plugin!r}: its {role} {factory!r} names a "
                f"{type(target).__name__}, not something to call"
            )
        return target


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
        for role, factory in (("factory", component.factory), ("add_arguments", component.add_arguments)):
            well_formed = is_reference(factory) if isinstance(factory, str) else callable(factory)
            if not well_formed and not (role == "add_arguments" and factory is None):
                raise TypeError(
                    f"plugin {component.plugin!r}: {role} of {component.kind} {component.name!r} must be a reference "
                    f"'package.module:object' or a callable; got {factory!r}"
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
