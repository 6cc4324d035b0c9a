"""Plugins use only mmadapt's public API (and mmadapt.testing in tests), never another plugin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
PUBLIC_SUBMODULES = {"mmadapt.testing", "mmadapt.testing_models"}


def plugin_files():
    return sorted(p for p in PLUGINS.glob("*/**/*.py") if "pretrain_runs" not in p.parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def own_package(path: Path) -> str | None:
    src = path.relative_to(PLUGINS).parts
    return src[2] if len(src) > 2 and src[1] == "src" else None


def test_the_scan_sees_every_plugin():
    assert {p.relative_to(PLUGINS).parts[0] for p in plugin_files()} >= {"prompts", "shapes"}


@pytest.mark.parametrize("path", plugin_files(), ids=lambda p: str(p.relative_to(PLUGINS)))
def test_plugin_imports_only_the_public_api(path):
    sources = {p.name: own_package(p) for p in plugin_files()}
    plugin_packages = {pkg for pkg in sources.values() if pkg}
    mine = own_package(path) or f"mmadapt_{path.relative_to(PLUGINS).parts[0]}"
    bad = []
    for line, module in imported_modules(path):
        top = module.split(".")[0]
        if top == "mmadapt" and module != "mmadapt" and module not in PUBLIC_SUBMODULES:
            bad.append(f"line {line}: {module} (use `from mmadapt import ...`)")
        if top in plugin_packages and top != mine:
            bad.append(f"line {line}: {module} belongs to another plugin")
    assert not bad, f"{path}: " + "; ".join(bad)
