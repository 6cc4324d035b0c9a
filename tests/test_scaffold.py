"""`adapt new-plugin`: names, rendering, refusals, the docs example, and an end-to-end install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from mmadapt import HOOK_API, __version__
from mmadapt.cli import main
from mmadapt.scaffold import PluginNames, compatible_core_requirement, create_plugin, render_plugin
from mmadapt.testing import tiny_recipe_from
from omegaconf import OmegaConf
from plugin_dists import make_entry_point_dist, run_adapt

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "mmadapt-clip-adapter"
REGENERATE = "rm -rf docs/examples/mmadapt-clip-adapter && adapt new-plugin clip-adapter --dir docs/examples"
#: Files that installing or testing the example leaves behind; not part of the scaffold.
BUILD_LEFTOVERS = ("__pycache__", ".egg-info", ".pytest_cache", ".ruff_cache", "build", "dist", "runs")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("clip-adapter",
         ("clip-adapter", "clip_adapter", "mmadapt-clip-adapter", "mmadapt_clip_adapter", "ClipAdapter")),
        ("tip", ("tip", "tip", "mmadapt-tip", "mmadapt_tip", "TipAdapter")),
        ("my_method2", ("my-method2", "my_method2", "mmadapt-my-method2", "mmadapt_my_method2", "MyMethod2Adapter")),
        ("mmadapt-foo", ("foo", "foo", "mmadapt-foo", "mmadapt_foo", "FooAdapter")),
    ],
)
def test_plugin_names(given, expected):
    names = PluginNames.from_name(given)
    assert (names.name, names.ident, names.dist, names.module, names.class_name) == expected


@pytest.mark.parametrize("bad", ["Foo", "2fast", "foo--bar", "foo-", "foo bar", "", "mmadapt-", "föö", "a.b"])
def test_invalid_names_are_refused_with_the_rule(bad, tmp_path, capsys):
    assert main(["new-plugin", bad, "--dir", str(tmp_path)]) == 2
    assert "lowercase letters, digits and hyphens" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.1.0", "mmadapt>=0.1,<0.2"),
        ("0.3", "mmadapt>=0.3,<0.4"),
        ("1.2.3", "mmadapt>=1.2,<2"),
        ("2", "mmadapt>=2.0,<3"),
    ],
)
def test_compatible_core_requirement(version, expected):
    assert compatible_core_requirement(version) == expected


def test_new_plugin_writes_a_complete_package(tmp_path, capsys):
    assert main(["new-plugin", "tip", "--dir", str(tmp_path)]) == 0
    package = tmp_path / "mmadapt-tip"
    assert f"created {package}" in capsys.readouterr().out
    written = sorted(str(p.relative_to(package)) for p in package.rglob("*") if p.is_file())
    assert written == [
        ".gitignore",
        "README.md",
        "pyproject.toml",
        "src/mmadapt_tip/__init__.py",
        "src/mmadapt_tip/adapter.py",
        "src/mmadapt_tip/cli.py",
        "src/mmadapt_tip/config.py",
        "src/mmadapt_tip/plugin.py",
        "src/mmadapt_tip/recipes/tip-shapes.yaml",
        "tests/test_plugin.py",
        "tests/test_tip_processes.py",
    ]
    project = read_toml(package / "pyproject.toml")["project"]
    assert project["name"] == "mmadapt-tip"
    assert project["entry-points"]["mmadapt"] == {"tip": "mmadapt_tip.plugin"}
    assert project["dependencies"] == [compatible_core_requirement(__version__)]
    assert f"HOOK_API {HOOK_API}" in (package / "README.md").read_text()
    assert read_toml(package / "pyproject.toml")["tool"]["setuptools"]["package-data"] == {
        "mmadapt_tip": ["recipes/**/*.yaml"]}
    recipe = OmegaConf.load(package / "src" / "mmadapt_tip" / "recipes" / "tip-shapes.yaml")
    assert recipe.adapter.name == "tip" and "mmadapt-tip>=0.1" in recipe.requires
    for path in package.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text(), f"unfilled placeholder in {path}"


def test_new_plugin_refuses_an_existing_directory(tmp_path, capsys):
    existing = tmp_path / "mmadapt-tip"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    assert main(["new-plugin", "tip", "--dir", str(tmp_path)]) == 2
    assert f"{existing} already exists" in capsys.readouterr().err
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]


def test_new_plugin_refuses_the_name_of_an_installed_adapter(tmp_path, capsys):
    assert main(["new-plugin", "linear-probe", "--dir", str(tmp_path)]) == 2
    assert "already registered by plugin 'mmadapt.builtin.plugin'" in capsys.readouterr().err
    assert not (tmp_path / "mmadapt-linear-probe").exists()


@pytest.mark.parametrize("taken", ["bench", "coop-split"])
def test_new_plugin_refuses_the_name_of_a_command(taken, tmp_path, capsys):
    assert main(["new-plugin", taken, "--dir", str(tmp_path)]) == 2
    assert f"`adapt {taken}` is already a command" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_the_docs_example_is_the_scaffold_output():
    expected = render_plugin(PluginNames.from_name("clip-adapter"))
    actual = {
        str(path.relative_to(EXAMPLE)): path.read_text()
        for path in sorted(EXAMPLE.rglob("*"))
        if path.is_file() and not any(part.endswith(BUILD_LEFTOVERS) for part in path.relative_to(EXAMPLE).parts)
    }
    assert sorted(actual) == sorted(expected), f"file lists differ; regenerate the example: {REGENERATE}"
    stale = [path for path in expected if actual[path] != expected[path]]
    assert not stale, f"{stale} differ from the templates in mmadapt/templates/plugin; regenerate: {REGENERATE}"


def test_the_templates_are_package_data():
    """Every template file matches a package-data glob of core/pyproject.toml, so wheels ship it."""
    globs = read_toml(ROOT / "core" / "pyproject.toml")["tool"]["setuptools"]["package-data"]
    package = Path(str(resources.files("mmadapt")))
    shipped = {path for pattern in globs["mmadapt"] for path in package.glob(pattern)}
    templates = [path for path in (package / "templates").rglob("*.tmpl")]
    assert templates and not [path for path in templates if path not in shipped]


def test_create_plugin_without_a_registry_skips_the_clash_check(tmp_path):
    # The Python API works without a plugin manager (e.g. from a cookiecutter-style script).
    assert create_plugin("lora", tmp_path).name == "mmadapt-lora"


@pytest.mark.slow
def test_scaffold_install_test_run_and_list(tmp_path):
    """The issue's acceptance test: scaffold, pip install -e, run its tests, run its recipe, list it."""
    name = f"kit-e2e-{os.getpid()}"  # unique: other test sessions may share this environment
    names = PluginNames.from_name(name)
    package = create_plugin(name, tmp_path)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # --no-deps --no-build-isolation: nothing is downloaded; mmadapt and setuptools are already here.
    install = subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "-e", str(package)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    try:
        tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                               cwd=package, capture_output=True, text=True, timeout=300)
        assert tests.returncode == 0, tests.stdout[-4000:] + tests.stderr[-2000:]
        assert "8 passed" in tests.stdout  # with the 2-process case

        listed = run_adapt(["plugins", "--json"])
        entry = next(e for e in json.loads(listed.stdout) if e["distribution"] == names.dist)
        assert entry["components"] == {"adapter": [name], "command": [name]}
        assert entry["version"] == "0.1.0" and not entry["error"]

        recipe = package / "src" / names.module / "recipes" / f"{name}-shapes.yaml"
        listed_recipes = [line.split()[:2] for line in run_adapt(["recipes"]).stdout.splitlines()]
        assert [f"{name}-shapes", name] in listed_recipes  # shipped, with its plugin's name
        validated = run_adapt(["validate", f"{name}-shapes"])
        if _installed("mmadapt-shapes"):
            assert validated.returncode == 0, validated.stderr
        else:
            assert validated.returncode == 2 and "pip install 'mmadapt-shapes>=0.1'" in validated.stderr

        # The recipe's method on the tiny components: the subprocess finds them through an entry point.
        tiny = tmp_path / "tiny-recipe.yaml"
        OmegaConf.save(OmegaConf.create(tiny_recipe_from(recipe, train={"epochs": 2})), tiny)
        entry_points = tmp_path / "entry-points"
        entry_points.mkdir()
        make_entry_point_dist(entry_points, "mmadapt-testing-tiny", "tiny", "mmadapt.testing:tiny_components")
        ran = run_adapt(["run", str(tiny), "--output-dir", str(tmp_path / "run")], path=entry_points)
        assert ran.returncode == 0, ran.stderr[-4000:]
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert summary["steps"] > 0 and summary["params"]["trainable"] > 0
        assert set(summary["metrics"]) == {"initial/test/accuracy", "test/accuracy"}
    finally:
        subprocess.run([*pip, "uninstall", "-y", names.dist], capture_output=True, timeout=300)
    assert names.dist not in run_adapt(["plugins", "--json"]).stdout


def read_toml(path: Path) -> dict:
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    return tomllib.loads(path.read_text())


def _installed(distribution: str) -> bool:
    from importlib import metadata

    try:
        metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True
