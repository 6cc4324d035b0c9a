"""The plugin manager: builtins first, then entry points of group ``mmadapt`` one at a time.

A plugin that raises while importing or registering is recorded (distribution, version, error) and
reported by ``adapt plugins``; everything else keeps working. A lifecycle observer that raises during
a run is reported as a warning and the run goes on. ``MMADAPT_STRICT_PLUGINS=1`` re-raises instead,
and ``MMADAPT_LOAD_PLUGINS=a,b`` loads only the named entry points or distributions. A plugin that is
not installed — a module or a ``.py`` file with hook implementations — joins for one command with
``adapt -p MODULE`` or ``adapt --plugin FILE.py`` (:meth:`PluginManager.add_local_plugin`).
"""

from __future__ import annotations

import importlib
import importlib.resources
import importlib.util
import os
import sys
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

from . import hookspecs
from .errors import UserError
from .registry import KINDS, Component, Factory, Registry

ENTRY_POINT_GROUP = "mmadapt"

#: Builtin plugin modules, registered through the same path as third-party plugins.
BUILTIN_PLUGINS = ("mmadapt.builtin.plugin",)

_REGISTRATION_HOOKS = {f"register_{kind}s": kind for kind in KINDS}

#: Hooks that observe a run (``on_*``); :class:`LifecycleHooks` calls them.
LIFECYCLE_HOOKS = tuple(name for name in vars(hookspecs) if name.startswith("on_"))


@dataclass
class PluginInfo:
    """What is known about one loaded (or failed) plugin."""

    name: str
    distribution: str | None
    version: str | None
    hooks: list[str] = field(default_factory=list)
    error: str | None = None
    traceback: str | None = None
    #: A plugin loaded for one command (``adapt -p``): the module name or file it came from.
    local: str | None = None

    @property
    def origin(self) -> str:
        """``distribution version``, ``local FILE`` or ``builtin``."""
        if self.local:
            return f"local {self.local}"
        return f"{self.distribution} {self.version}" if self.distribution else "builtin"

    @property
    def label(self) -> str:
        """``name (origin)`` for messages."""
        return f"{self.name!r} ({self.origin})"


@dataclass(frozen=True)
class RecipeFolder:
    """A folder of recipe files that a plugin ships (its ``register_recipes`` hook)."""

    plugin: str
    distribution: str | None
    path: Path


class PluginManager:
    """Loads plugins, records failures and fills a :class:`~mmadapt.registry.Registry`."""

    def __init__(self, *, strict: bool | None = None, only: set[str] | None = None) -> None:
        self.pm = pluggy.PluginManager("mmadapt")
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.plugins: dict[str, PluginInfo] = {}
        #: The recipe folders of every loaded plugin, in load order.
        self.recipe_folders: list[RecipeFolder] = []
        self.strict = _env_flag("MMADAPT_STRICT_PLUGINS") if strict is None else strict
        self.only = _env_list("MMADAPT_LOAD_PLUGINS") if only is None else only

    @property
    def hook(self) -> Any:
        """The pluggy hook relay: every hook, with pluggy's error handling (the first error propagates)."""
        return self.pm.hook

    @property
    def lifecycle(self) -> LifecycleHooks:
        """The lifecycle hooks, each plugin's observer called on its own: ``lifecycle.on_run_start(run=...)``."""
        return LifecycleHooks(self.pm, self.strict)

    @property
    def failures(self) -> list[PluginInfo]:
        """Plugins that failed to import or register."""
        return [info for info in self.plugins.values() if info.error]

    def load(self, *, entry_points: bool = True) -> PluginManager:
        """Load the builtins, then every entry point, then register every component."""
        version = _distribution_version("mmadapt")
        for module_name in BUILTIN_PLUGINS:
            self.add_plugin(module_name, partial(importlib.import_module, module_name), "mmadapt", version)
        if entry_points:
            for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
                dist = entry_point.dist
                dist_name = dist.metadata["Name"] if dist else None
                if self.only is not None and not {entry_point.name, dist_name} & self.only:
                    continue
                self.add_plugin(entry_point.name, entry_point.load, dist_name, dist.version if dist else None)
        self.pm.check_pending()
        return self

    def add_local_plugin(self, source: str) -> PluginInfo:
        """Load a plugin that is not installed, for this manager only: a module name (importable from
        ``sys.path``) or a ``.py`` file, whose hook implementations join as if an entry point named them.

        A file is imported as the module named by its stem, so its registrations may refer to it
        (``"my_plugin:build"``). A plugin that fails to load is a ``UserError``: it was asked for by name.
        """
        if source.endswith(".py") or os.sep in source:
            path = Path(source).resolve()
            if not path.is_file():
                raise UserError(f"--plugin {source}: no such file")
            name, loader = path.stem, partial(_import_file, path)
        else:
            name, loader = source, partial(importlib.import_module, source)
        if name in self.plugins:
            raise UserError(f"--plugin {source}: a plugin named {name!r} is already loaded "
                            f"({self.plugins[name].origin}); rename the module")
        info = self.add_plugin(name, loader)
        info.local = source
        if info.error:
            raise UserError(f"--plugin {source} failed to load: {info.error}")
        self.pm.check_pending()
        return info

    def add_plugin(
        self,
        name: str,
        loader: Callable[[], ModuleType | object],
        distribution: str | None = None,
        version: str | None = None,
    ) -> PluginInfo:
        """Import one plugin with ``loader``, register it with pluggy and collect its components.

        Failures are recorded in ``self.plugins[name].error`` unless the manager is strict.
        """
        info = PluginInfo(name=name, distribution=distribution, version=version)
        self.plugins[name] = info
        plugin = None
        try:
            plugin = loader()
            self.pm.register(plugin, name=name)
            info.hooks = sorted(impl.name for impl in self.pm.get_hookcallers(plugin) or [])
            self._collect_components(plugin, info)
        except Exception as exc:
            if plugin is not None and self.pm.is_registered(plugin):
                self.pm.unregister(plugin)
            if self.strict:
                raise
            info.error = f"{type(exc).__name__}: {exc}"
            info.traceback = traceback.format_exc()
            self.registry.failures.append(info)
        return info

    def _collect_components(self, plugin: object, info: PluginInfo) -> None:
        staged = Registry()
        for hook_name, kind in _REGISTRATION_HOOKS.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                if impl.plugin is plugin:
                    stage = _STAGERS.get(kind) or partial(_stage, kind)
                    impl.function(register=partial(stage, staged, info))
        folders: list[RecipeFolder] = []
        for impl in self.pm.hook.register_recipes.get_hookimpls():
            if impl.plugin is plugin:
                impl.function(register=partial(_stage_recipes, folders, info))
        # All of a plugin's components land together, so a plugin failing halfway adds nothing.
        components = [component for kind in KINDS for component in staged.all(kind)]
        for component in components:
            self.registry.check_new(component)
        for component in components:
            self.registry.add(component)
        self.recipe_folders.extend(folders)


def _import_file(path: Path) -> ModuleType:
    """Import a ``.py`` file as the module named by its stem (registered in ``sys.modules``)."""
    name = path.stem
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "") or "").resolve() != path:
        raise UserError(f"--plugin {path}: a module named {name!r} is already imported from "
                        f"{getattr(loaded, '__file__', 'elsewhere')}; rename the file")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"--plugin {path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def plugin_report(manager: PluginManager) -> list[dict]:
    """One entry per plugin of ``manager``: name, distribution, version, hooks, components by kind, load error,
    and for a plugin loaded with ``adapt -p`` the module or file (what ``adapt plugins`` prints and each
    run's ``env.json`` records)."""
    report = []
    for info in manager.plugins.values():
        components: dict[str, list[str]] = {}
        for kind in KINDS:
            names = [c.name for c in manager.registry.all(kind) if c.plugin == info.name]
            if names:
                components[kind] = names
        report.append(
            {
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "hooks": info.hooks,
                "components": components,
                "error": info.error,
                "local": info.local,
            }
        )
    return report


def _stage(
    kind: str,
    staged: Registry,
    info: PluginInfo,
    name: str,
    factory: Factory,
    config: type | None = None,
    summary: str = "",
) -> None:
    staged.add(Component(kind, name, factory, config, summary, info.name, info.distribution, info.version))


def _stage_command(
    staged: Registry,
    info: PluginInfo,
    name: str,
    handler: Factory,
    help: str = "",
    add_arguments: Factory | None = None,
) -> None:
    origin = (info.name, info.distribution, info.version)
    staged.add(Component("command", name, handler, None, help, *origin, add_arguments=add_arguments))


def _stage_benchmark(
    staged: Registry,
    info: PluginInfo,
    name: str,
    run: Factory,
    summary: str = "",
    add_arguments: Factory | None = None,
) -> None:
    origin = (info.name, info.distribution, info.version)
    staged.add(Component("benchmark", name, run, None, summary, *origin, add_arguments=add_arguments))


def _stage_recipes(folders: list[RecipeFolder], info: PluginInfo, location: str | os.PathLike[str]) -> None:
    if isinstance(location, str):
        path = Path(str(importlib.resources.files(location) / "recipes"))
        where = f"package {location!r}'s recipes/ folder ({path})"
    else:
        path = Path(location)
        where = str(path)
    if not path.is_dir():
        raise ValueError(f"register_recipes: {where} is not a folder; a package lists its recipes as package data "
                         "so that its wheel carries them")
    folders.append(RecipeFolder(info.name, info.distribution, path))


_STAGERS = {"command": _stage_command, "benchmark": _stage_benchmark}


class LifecycleHooks:
    """The lifecycle hooks as attributes (``on_run_start(run=...)``, ...), calling every plugin's
    observer on its own: one that raises is reported as a ``RuntimeWarning`` naming the plugin and
    the hook, and the others still run. A strict manager (``MMADAPT_STRICT_PLUGINS=1``) lets the
    error propagate instead.
    """

    def __init__(self, pm: pluggy.PluginManager, strict: bool) -> None:
        self._pm = pm
        self._strict = strict
        for hook_name in LIFECYCLE_HOOKS:
            setattr(self, hook_name, partial(self._call, hook_name))

    def _call(self, hook_name: str, **kwargs: Any) -> None:
        plugins = self._pm.get_plugins()
        # pluggy calls the most recently registered implementation first; so do we, one plugin at a time.
        for impl in reversed(getattr(self._pm.hook, hook_name).get_hookimpls()):
            alone = self._pm.subset_hook_caller(hook_name, [p for p in plugins if p is not impl.plugin])
            try:
                alone(**kwargs)
            except Exception as exc:
                if self._strict:
                    raise
                warnings.warn(
                    f"plugin {impl.plugin_name!r} raised in {hook_name}: {type(exc).__name__}: {exc}; the run "
                    f"goes on (MMADAPT_STRICT_PLUGINS=1 stops it instead)",
                    RuntimeWarning,
                    stacklevel=2,
                )


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None:
        return None
    return {item.strip() for item in value.split(",") if item.strip()}


def _distribution_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


_manager: PluginManager | None = None


def get_plugin_manager() -> PluginManager:
    """The process-wide plugin manager, loaded on first use."""
    global _manager
    if _manager is None:
        _manager = PluginManager().load()
    return _manager


def reset_plugin_manager(manager: PluginManager | None = None) -> None:
    """Replace the process-wide manager (tests use this to install a fresh one)."""
    global _manager
    _manager = manager
