"""The examples in docs/ stay runnable: every full recipe validates and every `adapt` command exists."""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest
from mmadapt.cli import build_parser
from mmadapt.config import COMPONENT_SECTIONS
from mmadapt.errors import RecipeError
from mmadapt.plugins import PluginManager
from mmadapt.recipe import check_requirements, validate_recipe
from mmadapt.registry import FIRST_PARTY
from omegaconf import OmegaConf

DOCS = Path(__file__).resolve().parents[1] / "docs"

#: A fenced block: opening fence with its info string, body, closing fence of the same length.
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^[ \t]*(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
#: Top-level keys that make a YAML block a full recipe.
RECIPE_KEYS = ("backbone", "data", "adapter")
#: Languages whose blocks hold shell commands.
SHELL = {"bash", "sh", "shell", "console", "text", ""}
#: `adapt <subcommand>` and `python -m mmadapt <subcommand>` (and `-m mmadapt` after a launcher).
COMMAND = re.compile(r"(?:(?<![\w./-])adapt|-m\s+mmadapt)\s+(?P<sub>[a-z][\w-]*)")
INLINE_CODE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def doc_files() -> list[Path]:
    return sorted(DOCS.glob("*.md"))


def fenced_blocks(path: Path) -> list[tuple[int, str, str]]:
    """``(line, language, body)`` of every fenced block in a Markdown file."""
    text = path.read_text(encoding="utf-8")
    blocks = []
    for match in FENCE.finditer(text):
        indent = len(match["indent"])
        body = "\n".join(line[indent:] if line[:indent].strip() == "" else line for line in match["body"].splitlines())
        line = text.count("\n", 0, match.start()) + 1
        blocks.append((line, match["info"].strip().split(" ")[0].lower(), body))
    return blocks


def recipe_examples() -> list:
    params = []
    for path in doc_files():
        for line, language, body in fenced_blocks(path):
            top_level = {m.group(1) for m in re.finditer(r"^([A-Za-z_]\w*)\s*:", body, re.MULTILINE)}
            if language in ("yaml", "yml") and set(RECIPE_KEYS) <= top_level:
                params.append(pytest.param(f"{path.name}:{line}", body, id=f"{path.name}:{line}"))
    return params


@pytest.fixture(scope="module")
def manager() -> PluginManager:
    return PluginManager().load()


def installed(distribution: str) -> bool:
    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def component_names(recipe: dict) -> list[tuple[str, str]]:
    """``(kind, name)`` of every component the recipe names."""
    names = []
    for section, kind in COMPONENT_SECTIONS.items():
        value = recipe.get(section)
        if isinstance(value, str):
            names.append((kind, value))
        elif isinstance(value, dict) and "name" in value:
            names.append((kind, str(value["name"])))
    for entry in (recipe.get("eval") or {}).get("metrics") or []:
        name = entry if isinstance(entry, str) else entry.get("name") if isinstance(entry, dict) else None
        if name is not None:
            names.append(("metric", str(name)))
    return names


def uninstalled_first_party(kind: str, name: str) -> str | None:
    """The first-party distribution that provides ``kind`` ``name`` when it is not installed."""
    for distribution, provided in FIRST_PARTY.items():
        if name in provided.get(kind, ()) and not installed(distribution):
            return distribution
    return None


@pytest.mark.parametrize(("where", "text"), recipe_examples())
def test_recipe_example_validates(where: str, text: str, manager: PluginManager) -> None:
    given = OmegaConf.create(text)
    plain = OmegaConf.to_container(given)
    try:
        check_requirements(plain.get("requires") or [], where)
    except RecipeError as exc:
        pytest.skip(f"{where} requires what is not installed: {'; '.join(exc.problems)}")
    missing = [(kind, name) for kind, name in component_names(plain) if manager.registry.find(kind, name) is None]
    providers = {uninstalled_first_party(kind, name) for kind, name in missing}
    if missing and None not in providers:
        pytest.skip(f"{where} needs {', '.join(sorted(providers))}, not installed")
    problems = None
    try:
        validate_recipe(given, where, [], registry=manager.registry)
    except RecipeError as exc:
        problems = str(exc)
    if problems:
        pytest.fail(problems, pytrace=False)


def test_docs_have_recipe_examples() -> None:
    assert recipe_examples(), "no full recipe found in docs/*.md; is the detection broken?"


def subcommands(manager: PluginManager) -> set[str]:
    parser = build_parser(manager)
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name for action in actions for name in action.choices}


def mentioned_commands(path: Path) -> set[tuple[int, str]]:
    """``(line, subcommand)`` of every ``adapt <subcommand>`` in code spans and shell blocks."""
    text = path.read_text(encoding="utf-8")
    found = set()
    code = [
        (line + 1 + offset, body_line)
        for line, language, body in fenced_blocks(path)
        if language in SHELL
        for offset, body_line in enumerate(body.splitlines())
    ]
    prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for number, line in enumerate(prose.splitlines(), start=1):
        code += [(number, span) for span in INLINE_CODE.findall(line)]
    for line, snippet in code:
        for match in COMMAND.finditer(snippet):
            found.add((line, match["sub"]))
    return found


def example_commands(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """The commands the tutorial's example plugin (docs/examples/mmadapt-clip-adapter) adds once installed."""
    monkeypatch.syspath_prepend(str(DOCS / "examples" / "mmadapt-clip-adapter" / "src"))
    from mmadapt_clip_adapter import plugin

    names: set[str] = set()
    plugin.register_commands(register=lambda name, *args, **kwargs: names.add(name))
    for module in [m for m in sys.modules if m.split(".")[0] == "mmadapt_clip_adapter"]:
        del sys.modules[module]
    return names


def test_every_documented_command_exists(manager: PluginManager, monkeypatch: pytest.MonkeyPatch) -> None:
    known = subcommands(manager) | example_commands(monkeypatch)
    assert {"run", "validate", "eval", "plugins", "recipes", "runs"} <= known
    unknown = [
        f"{path.name}:{line}: adapt {sub}"
        for path in doc_files()
        for line, sub in sorted(mentioned_commands(path))
        if sub not in known
    ]
    assert not unknown, "docs mention commands that `adapt` does not have:\n" + "\n".join(unknown)
