"""``adapt new-plugin NAME``: create a ready-to-install plugin package ``mmadapt-NAME``.

The package is rendered from the templates in ``mmadapt/templates/plugin``: file contents and paths
hold placeholders like ``{{module}}``, filled from the plugin name (see :class:`PluginNames`). A
path component ``dot-x`` becomes ``.x`` (package data skips dot-files). The result is a complete
plugin in the plugin layout (entry point, config dataclass, registration by reference, a command, the
adapter, example recipe, README, tests on ``mmadapt.testing``) whose tests pass right after
``pip install -e``.

docs/examples/mmadapt-clip-adapter is ``adapt new-plugin clip-adapter`` verbatim; the tutorial in
docs/writing-a-plugin.md walks through it.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.version import Version

from . import HOOK_API, __version__
from .errors import UserError
from .registry import Registry

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

TEMPLATE_SUFFIX = ".tmpl"
_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


@dataclass(frozen=True)
class PluginNames:
    """Every spelling of a plugin's name that the templates use."""

    #: Component and entry-point name: ``clip-adapter``.
    name: str
    #: Python identifier: ``clip_adapter``.
    ident: str
    #: Distribution: ``mmadapt-clip-adapter``.
    dist: str
    #: Import package: ``mmadapt_clip_adapter``.
    module: str
    #: Adapter class: ``ClipAdapter`` (``Adapter`` is appended unless the name ends with it).
    class_name: str

    @classmethod
    def from_name(cls, text: str) -> PluginNames:
        """Validate and spell a plugin name; ``_`` reads as ``-`` and a leading ``mmadapt-`` is dropped."""
        name = text.strip().replace("_", "-")
        name = name.removeprefix("mmadapt-")
        if not _NAME.fullmatch(name):
            raise UserError(
                f"plugin name {text!r} is not valid: use lowercase letters, digits and hyphens, starting "
                "with a letter (e.g. clip-adapter); it names the adapter, the distribution mmadapt-NAME "
                "and the package mmadapt_NAME"
            )
        ident = name.replace("-", "_")
        camel = "".join(part.capitalize() for part in name.split("-"))
        class_name = camel if camel.endswith("Adapter") else f"{camel}Adapter"
        return cls(name, ident, f"mmadapt-{name}", f"mmadapt_{ident}", class_name)


def compatible_core_requirement(version: str = __version__) -> str:
    """The mmadapt range a new plugin accepts: same minor for 0.x (``mmadapt>=0.1,<0.2``), else same major."""
    release = Version(version).release + (0,)
    major, minor = release[0], release[1]
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f"mmadapt>={major}.{minor},<{upper}"


def render_plugin(names: PluginNames, core_version: str = __version__) -> dict[str, str]:
    """The files of the new plugin: ``{relative path: content}``."""
    values = {
        "name": names.name,
        "ident": names.ident,
        "dist": names.dist,
        "module": names.module,
        "class": names.class_name,
        "core_requirement": compatible_core_requirement(core_version),
        "core_version": core_version,
        "hook_api": str(HOOK_API),
    }
    root = resources.files("mmadapt").joinpath("templates", "plugin")
    files = {}
    for relative, template in _templates(root, ()):
        path = "/".join(_fill(part, values) for part in relative)
        path = "/".join(f".{part[4:]}" if part.startswith("dot-") else part for part in path.split("/"))
        files[path.removesuffix(TEMPLATE_SUFFIX)] = _fill(template.read_text(encoding="utf-8"), values)
    return dict(sorted(files.items()))


def create_plugin(
    name: str, parent: str | Path = ".", *, registry: Registry | None = None, commands: Collection[str] = ()
) -> Path:
    """Write the plugin package ``mmadapt-NAME`` under ``parent`` and return its path.

    Refuses (``UserError``, exit code 2) an invalid name, an adapter name that an installed plugin
    already registers, a name among ``commands`` (``adapt``'s subcommands: the plugin adds
    ``adapt NAME``; either would clash once installed), and an existing directory.
    """
    names = PluginNames.from_name(name)
    if names.name in commands:
        raise UserError(
            f"`adapt {names.name}` is already a command, and the plugin adds `adapt {names.name}`; choose another name"
        )
    existing = registry.find("adapter", names.name) if registry is not None else None
    if existing is not None:
        origin = existing.distribution or "builtin"
        raise UserError(
            f"an adapter named {names.name!r} is already registered by plugin {existing.plugin!r} ({origin}); "
            "choose another name"
        )
    target = Path(parent) / names.dist
    if target.exists():
        raise UserError(f"{target} already exists; choose another --dir or remove it first")
    files = render_plugin(names)  # render everything first, so a template error leaves no half-written package
    for relative, content in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return target


def _templates(folder: Traversable, prefix: tuple[str, ...]) -> list[tuple[tuple[str, ...], Traversable]]:
    found = []
    for entry in folder.iterdir():
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            found += _templates(entry, (*prefix, entry.name))
        elif entry.name.endswith(TEMPLATE_SUFFIX):
            found.append(((*prefix, entry.name), entry))
    return found


def _fill(text: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"unknown template placeholder {{{{{key}}}}}")
        return values[key]

    return _PLACEHOLDER.sub(replace, text)
