"""No import cycles inside the core package or any bundled plugin, and the builtin plugins depend on the
core, never the reverse.

Imports inside functions count too. A cycle through a function-level import still ties two modules
together (neither can be understood, tested or moved without the other), and turns into an
ImportError as soon as one import moves to the top of its module. Imports under
``if TYPE_CHECKING:`` are left out: they never run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import mmadapt

ROOT = Path(__file__).resolve().parents[1]
#: The core package and the package of every plugin under plugins/.
PACKAGES = [Path(mmadapt.__file__).parent, *sorted(ROOT.glob("plugins/*/src/mmadapt_*"))]


def module_name(path: Path, package: Path) -> str:
    """``mmadapt.builtin.openclip`` for ``.../mmadapt/builtin/openclip.py``; a package is its ``__init__``."""
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path, package): path for package in PACKAGES for path in package.rglob("*.py")}


def _is_type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found, pending = [], [tree]
    while pending:
        node = pending.pop()
        if _is_type_checking_block(node):
            pending.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        pending.extend(ast.iter_child_nodes(node))
    return found


def imported_modules(name: str, source: str, is_package: bool = False) -> set[str]:
    """The checked packages' modules that module ``name`` (its ``source``) imports anywhere in its code."""
    package = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names if alias.name in MODULES}
            continue
        base = node.module or ""
        if node.level:
            anchor = package
            for _ in range(node.level - 1):
                anchor = anchor.rpartition(".")[0]
            base = f"{anchor}.{base}" if base else anchor
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            if submodule in MODULES:
                targets.add(submodule)
            elif base in MODULES:
                targets.add(base)
    targets.discard(name)
    return targets


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(cycles)


def test_the_cycle_finder_sees_a_cycle_through_function_level_imports():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    late = "def late():\n    from .runner import x\n    from .builtin import openclip\n"
    assert imported_modules("mmadapt.cli", late) == {"mmadapt.runner", "mmadapt.builtin.openclip"}
    typing_only = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .runner import x\n"
    assert imported_modules("mmadapt.cli", typing_only) == set()


def test_the_core_and_every_plugin_have_no_import_cycles():
    assert {package.name for package in PACKAGES} >= {
        "mmadapt", "mmadapt_ept", "mmadapt_kapt", "mmadapt_lane", "mmadapt_lit", "mmadapt_prompts", "mmadapt_shapes"
    }
    graph = {name: imported_modules(name, path.read_text(), path.name == "__init__.py")
             for name, path in MODULES.items()}
    assert import_cycles(graph) == [], "modules that import each other, directly or through others"


#: Core modules allowed to import a builtin plugin, and why. ``mmadapt.testing_models`` wraps its tiny
#: open_clip and timm models in the builtin backbone classes (``OpenClipBackbone``, ``TimmBackbone``),
#: which tests use exactly as recipes build them.
BUILTIN_IMPORTERS = {"mmadapt.testing_models"}


def test_no_core_module_imports_a_builtin_plugin():
    """``mmadapt.builtin`` registers through the same hooks as third-party plugins; the core needs none of it.

    What plugins share lives in the core proper (``mmadapt.zeroshot_classifier`` in
    ``mmadapt.zeroshot``, say). ``mmadapt/__init__.py`` names builtin classes in its lazy table and
    the plugin manager loads the builtins by module name; neither is an import statement.
    """
    importers = {
        name: sorted(target for target in imported_modules(name, path.read_text(), path.name == "__init__.py")
                     if target == "mmadapt.builtin" or target.startswith("mmadapt.builtin."))
        for name, path in MODULES.items()
        if name != "mmadapt.builtin" and not name.startswith("mmadapt.builtin.") and name not in BUILTIN_IMPORTERS
    }
    assert {name: targets for name, targets in importers.items() if targets} == {}
    assert MODULES.keys() >= BUILTIN_IMPORTERS, "an allowed importer no longer exists; drop it from the list"
