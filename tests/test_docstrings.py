"""Every public function, class, method and property in core/src and plugins/*/src has a docstring,
and so does every hook implementation.

Public: a name without a leading underscore, at module level or in a public class. A hook
implementation (``@hookimpl``) counts wherever it is, since pluggy calls it by its hook's name.
Functions nested inside functions are implementation details and do not count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SOURCE_ROOTS = [REPO / "core" / "src", *sorted((REPO / "plugins").glob("*/src"))]

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _is_hookimpl(node: Definition) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
        if name == "hookimpl":
            return True
    return False


def undocumented(source: str) -> list[str]:
    """``line: qualified name`` of each public definition in ``source`` that has no docstring."""
    missing: list[str] = []

    def visit(body: list[ast.stmt], prefix: str, public_scope: bool) -> None:
        for node in body:
            if not isinstance(node, Definition):
                continue
            name = f"{prefix}{node.name}"
            public = public_scope and not node.name.startswith("_")
            if (public or _is_hookimpl(node)) and ast.get_docstring(node) is None:
                missing.append(f"{node.lineno}: {name}")
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{name}.", public)

    visit(ast.parse(source).body, "", True)
    return missing


def source_files() -> list[Path]:
    """The Python files of the core package and of every plugin package."""
    return sorted(path for root in SOURCE_ROOTS for path in root.rglob("*.py"))


def test_the_finder_sees_what_counts_and_skips_what_does_not():
    source = '''
class Public:
    def method(self): pass
    @property
    def value(self): return 1
    def _private(self): pass
    def __init__(self): pass
class _Private:
    def method(self): pass
    @hookimpl
    def register_adapters(self, register): pass
def function():
    """Documented."""
    def nested(): pass
@mmadapt.hookimpl
def _hook(): pass
'''
    assert undocumented(source) == ["2: Public", "3: Public.method", "5: Public.value",
                                    "11: _Private.register_adapters", "16: _hook"]


@pytest.mark.parametrize("path", source_files(), ids=lambda path: str(path.relative_to(REPO)))
def test_public_definitions_have_docstrings(path):
    missing = undocumented(path.read_text(encoding="utf-8"))
    assert not missing, f"{path.relative_to(REPO)}: no docstring on\n  " + "\n  ".join(missing)
