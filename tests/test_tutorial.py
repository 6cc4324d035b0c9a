"""The plugin-author docs cannot drift from code: quotes match the example package, examples run.

In docs/writing-a-plugin.md and docs/testing-plugins.md, a code block whose first line is
``# file: PATH`` must equal the whole file PATH of docs/examples/mmadapt-clip-adapter, and one whose
first line is ``# excerpt: PATH`` must appear in it verbatim. Every Python block of the tutorial is
such a quote; every other Python block of testing-plugins.md is a test module that runs here, its
test functions getting real fixtures. (test_scaffold.py checks that the example package is what
``adapt new-plugin clip-adapter`` creates.)
"""

from __future__ import annotations

import inspect
import json
import re
import sys
import types
from pathlib import Path

import pytest
from mmadapt.recipe import validate_recipe
from mmadapt.testing import adapt_command, run_recipe, tiny_recipe_from
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "writing-a-plugin.md"
TESTING = ROOT / "docs" / "testing-plugins.md"
EXAMPLE = ROOT / "docs" / "examples" / "mmadapt-clip-adapter"
RECIPE = EXAMPLE / "src" / "mmadapt_clip_adapter" / "recipes" / "clip-adapter-shapes.yaml"
FENCE = re.compile(r"^```(?P<language>[\w-]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
MARKER = re.compile(r"# (?P<kind>file|excerpt): (?P<path>\S+)\n")
#: Files a reader must see in full to build the plugin.
QUOTED_IN_FULL = {
    "pyproject.toml",
    "src/mmadapt_clip_adapter/config.py",
    "src/mmadapt_clip_adapter/adapter.py",
    "src/mmadapt_clip_adapter/plugin.py",
    "src/mmadapt_clip_adapter/cli.py",
    "src/mmadapt_clip_adapter/recipes/clip-adapter-shapes.yaml",
    "tests/test_plugin.py",
}


def code_blocks(doc: Path) -> list[tuple[int, str, str]]:
    """``(line, language, body)`` of every fenced block of a Markdown file."""
    text = doc.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m["language"], m["body"]) for m in FENCE.finditer(text)]


def quoted_blocks(docs: tuple[Path, ...] = (TUTORIAL, TESTING)) -> list:
    return [
        pytest.param(marker["kind"], marker["path"], body[marker.end():], id=f"{doc.name}:{line}: {marker['path']}")
        for doc in docs
        for line, _, body in code_blocks(doc)
        if (marker := MARKER.match(body))
    ]


def example_tests() -> list:
    """``(line, source, test name)`` for each test function of each runnable block of testing-plugins.md."""
    params = []
    for line, language, body in code_blocks(TESTING):
        if language == "python" and not MARKER.match(body):
            names = re.findall(r"^def (test_\w+)\(", body, re.MULTILINE)
            assert names, f"testing-plugins.md:{line}: a runnable example must define test functions"
            params += [pytest.param(line, body, name, id=f"testing-plugins.md:{line}:{name}") for name in names]
    return params


@pytest.mark.parametrize(("kind", "path", "quoted"), quoted_blocks())
def test_quoted_code_matches_the_example_package(kind, path, quoted):
    source = EXAMPLE / path
    assert source.is_file(), f"the tutorial quotes {path}, which docs/examples/mmadapt-clip-adapter lacks"
    content = source.read_text(encoding="utf-8")
    if kind == "file":
        assert quoted == content, f"the tutorial's copy of {path} differs from the file; paste the file again"
    else:
        assert quoted.strip("\n") in content, f"the tutorial's excerpt of {path} is not in the file"


def test_every_python_block_of_the_tutorial_is_a_checked_quote():
    unchecked = [
        line for line, language, body in code_blocks(TUTORIAL) if language == "python" and not MARKER.match(body)
    ]
    assert not unchecked, f"Python blocks at lines {unchecked} need a '# file: PATH' or '# excerpt: PATH' first line"


def test_the_tutorial_shows_every_file_of_the_plugin():
    shown = {path for kind, path, _ in (p.values for p in quoted_blocks((TUTORIAL,))) if kind == "file"}
    assert shown >= QUOTED_IN_FULL, f"not quoted in full: {sorted(QUOTED_IN_FULL - shown)}"


@pytest.fixture
def clip_adapter(monkeypatch):
    """The example plugin's module, importable from the docs folder for this test only."""
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    import mmadapt_clip_adapter.plugin

    yield mmadapt_clip_adapter.plugin
    for name in [m for m in sys.modules if m.split(".")[0] == "mmadapt_clip_adapter"]:
        del sys.modules[name]


def test_the_example_recipe_validates(clip_adapter, register_plugin, plugin_manager):
    if plugin_manager.registry.find("backbone", "shapes-clip") is None:
        pytest.skip("mmadapt-shapes is not installed")
    register_plugin(clip_adapter, "clip-adapter")
    recipe = validate_recipe(OmegaConf.load(RECIPE), str(RECIPE), [], registry=plugin_manager.registry)
    assert (recipe.adapter.name, recipe.adapter.config.alpha) == ("clip-adapter", 0.2)


def test_the_tutorial_adapter_learns_the_tiny_task(clip_adapter, register_plugin, tiny_plugin, tmp_path):
    register_plugin(clip_adapter, "clip-adapter")
    # The recipe's adapter settings; a random-weight tiny CLIP needs more steps and a larger rate than
    # shapes-clip to move its features.
    recipe = tiny_recipe_from(RECIPE, train={"epochs": 15, "lr": 0.1, "log_every": 1})
    summary = run_recipe(recipe, tmp_path)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    losses = [record["loss"] for record in map(json.loads, lines) if "loss" in record]
    assert losses[-1] < 0.5 * losses[0], losses
    # 4 classes: chance is 25%.
    assert summary["metrics"]["test/accuracy"] >= 75.0, summary["metrics"]
    assert summary["params"]["trainable"] == 2 * 32 * (32 // 4)  # d²/2 for the tiny CLIP's d = 32


def test_the_example_command_counts_the_tutorial_parameters(clip_adapter, register_plugin, capsys):
    register_plugin(clip_adapter, "clip-adapter")
    assert adapt_command(["clip-adapter", "params", "--width", "512"]) == 0
    assert "131,072 trainable parameters" in capsys.readouterr().out  # d²/2 for ViT-B/16's d = 512


@pytest.mark.parametrize(("line", "source", "name"), example_tests())
def test_testing_docs_example_runs(line, source, name, request, monkeypatch):
    # A real module in sys.modules, as pytest would import it (dataclasses look their module up there).
    module = types.ModuleType(f"testing_plugins_md_{line}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    exec(compile(source, f"{TESTING}:{line}", "exec"), module.__dict__)
    test = getattr(module, name)
    test(**{parameter: request.getfixturevalue(parameter) for parameter in inspect.signature(test).parameters})


def test_testing_docs_have_runnable_examples():
    assert len(example_tests()) >= 5, "the runnable examples of testing-plugins.md are no longer detected"
