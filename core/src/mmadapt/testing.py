"""Pytest fixtures and helpers for plugin authors (loaded through the ``pytest11`` entry point).

Fixtures: ``plugin_manager`` (a fresh manager with the builtins and installed plugins, installed as
the process-wide one for the test) and ``register_plugin`` (add a plugin object for one test).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from .plugins import PluginManager, get_plugin_manager, reset_plugin_manager


@pytest.fixture
def plugin_manager() -> Iterator[PluginManager]:
    """A freshly loaded plugin manager, used by ``adapt`` code for the duration of one test."""
    previous = get_plugin_manager()
    manager = PluginManager().load()
    reset_plugin_manager(manager)
    yield manager
    reset_plugin_manager(previous)


@pytest.fixture
def register_plugin(plugin_manager: PluginManager) -> Callable[[Any, str], Any]:
    """``register_plugin(obj, name)`` adds a plugin object (module or instance) for this test only."""

    def register(plugin: Any, name: str = "test-plugin") -> Any:
        info = plugin_manager.add_plugin(name, lambda: plugin, distribution=None, version=None)
        if info.error:
            raise RuntimeError(f"plugin {name!r} failed to register: {info.error}\n{info.traceback}")
        return info

    return register
