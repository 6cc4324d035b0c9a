"""Recipes ship with their plugins: `adapt recipes` lists them with the plugin, `adapt run NAME` runs one
(a file path still wins), `adapt recipes copy NAME DEST` copies one; the repository's recipes are exactly
the shipped ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mmadapt import hookimpl
from mmadapt.cli import main
from mmadapt.plugins import PluginManager
from mmadapt.shipped_recipes import shipped_recipes
from mmadapt.testing import tiny_recipe
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
FIRST_PARTY = sorted(path.parent for path in ROOT.glob("plugins/*/pyproject.toml"))


class RecipePlugin:
    """Ships the recipe folder it is given (a path, as a plugin outside a package may)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @hookimpl
    def register_recipes(self, register):
        register(self.folder)


def write_recipe(folder: Path, name: str, **sections) -> Path:
    path = folder / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create(tiny_recipe(**sections)), path)
    return path


@pytest.fixture
def shipped(tmp_path, register_plugin, tiny_plugin):
    """A plugin `shipper` whose folder holds `tiny-eval` and `nested/tiny-eval`."""
    folder = tmp_path / "shipped"
    write_recipe(folder, "tiny-eval", description="the tiny components, evaluated only")
    write_recipe(folder, "nested/tiny-eval", description="the same one folder down")
    register_plugin(RecipePlugin(folder), "shipper")
    return folder


def test_recipes_lists_every_shipped_recipe_with_its_plugin_and_description(shipped, capsys):
    assert main(["recipes"]) == 0
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["tiny-eval"] == ["shipper", "the tiny components, evaluated only"]
    assert rows["nested/tiny-eval"] == ["shipper", "the same one folder down"]


def test_run_by_name_runs_the_shipped_file(shipped, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "nested/tiny-eval", "--output-dir", "out"]) == 0
    recorded = OmegaConf.load(tmp_path / "out" / "recipe.yaml")
    assert recorded.description == "the same one folder down"
    assert "test/accuracy" in json.loads((tmp_path / "out" / "summary.json").read_text())["metrics"]


def test_a_file_path_wins_over_a_name(shipped, tmp_path, monkeypatch, capsys):
    local = tmp_path / "here"
    write_recipe(local, "tiny-eval", adapter={"name": "no-such-adapter"})
    monkeypatch.chdir(local)
    (local / "tiny-eval.yaml").rename(local / "tiny-eval")  # a file whose path is the recipe's name
    assert main(["validate", "tiny-eval"]) == 2
    assert "no-such-adapter" in capsys.readouterr().err
    (local / "tiny-eval").unlink()
    assert main(["validate", "tiny-eval"]) == 0


def test_an_unknown_name_suggests_the_closest_and_an_old_path_names_the_recipe(shipped, capsys):
    assert main(["run", "tiny-evl"]) == 2
    err = capsys.readouterr().err
    assert "no installed plugin ships a recipe named 'tiny-evl'" in err and "did you mean 'tiny-eval'" in err
    assert main(["validate", "recipes/nested/tiny-eval.yaml"]) == 2
    assert "adapt run nested/tiny-eval" in capsys.readouterr().err


def test_copy_writes_an_editable_copy_and_never_overwrites(shipped, tmp_path, capsys):
    destination = tmp_path / "mine"
    destination.mkdir()
    assert main(["recipes", "copy", "nested/tiny-eval", str(destination)]) == 0
    copy = destination / "tiny-eval.yaml"
    assert copy.read_text() == (shipped / "nested" / "tiny-eval.yaml").read_text()
    assert main(["recipes", "copy", "tiny-eval", str(copy)]) == 2
    assert f"{copy} exists" in capsys.readouterr().err
    assert main(["recipes", "copy", "tiny-eval", str(tmp_path / "renamed.yaml")]) == 0
    assert (tmp_path / "renamed.yaml").read_text() == (shipped / "tiny-eval.yaml").read_text()


def test_a_name_two_plugins_ship_needs_the_plugin(shipped, tmp_path, register_plugin, capsys):
    other = tmp_path / "other"
    write_recipe(other, "tiny-eval", description="the other plugin's")
    register_plugin(RecipePlugin(other), "other-shipper")
    assert main(["validate", "tiny-eval"]) == 2
    assert "several plugins; name one of them: other-shipper:tiny-eval, shipper:tiny-eval" in capsys.readouterr().err
    assert main(["recipes", "copy", "other-shipper:tiny-eval", str(tmp_path / "picked.yaml")]) == 0
    assert "the other plugin's" in (tmp_path / "picked.yaml").read_text()


def test_a_missing_recipe_folder_fails_the_plugin_with_the_reason(plugin_manager, tmp_path):
    info = plugin_manager.add_plugin("packaging-mistake", lambda: RecipePlugin(tmp_path / "absent"))
    assert "is not a folder" in info.error and "package data" in info.error
    assert not [folder for folder in plugin_manager.recipe_folders if folder.plugin == "packaging-mistake"]


def test_the_repository_recipes_are_the_shipped_ones():
    """One source of truth: every recipe file of the repository lies in a plugin's package, is package
    data of its distribution, and is what the installed plugins ship; nothing is left at the top."""
    tomllib = pytest.importorskip("tomllib", reason="tomllib needs Python 3.11")
    assert not list((ROOT / "recipes").rglob("*.yaml")), "recipes/ at the top is not shipped; move them"
    manager = PluginManager().load()
    shipped = {recipe.path.resolve() for recipe in shipped_recipes(manager)}
    in_repository = set()
    for plugin in FIRST_PARTY:
        for package in (plugin / "src").glob("mmadapt_*/recipes"):
            files = {path.resolve() for path in package.rglob("*.yaml")}
            globs = tomllib.loads((plugin / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
            data = {path.resolve() for pattern in globs[package.parent.name] for path in package.parent.glob(pattern)}
            assert files <= data, f"{plugin.name}: recipes missing from package-data: {sorted(files - data)}"
            in_repository |= files
    assert in_repository
    # A plugin whose recipes live in this checkout ships exactly those files.
    from_here = {path for path in shipped if ROOT in path.parents}
    assert from_here == in_repository


def test_the_quickstart_ships_by_name(plugin_manager):
    names = {recipe.name: recipe.plugin for recipe in shipped_recipes(plugin_manager)}
    assert names.get("quickstart") == "prompts"
    assert {"shapes-zeroshot", "shapes-linear-probe", "shapes-lora"} <= {n for n, p in names.items() if p == "shapes"}


def test_recipes_dir_lists_the_files_of_a_folder(tmp_path, capsys):
    write_recipe(tmp_path / "mine", "sub/first", description="my first recipe")
    assert main(["recipes", "--dir", str(tmp_path / "mine")]) == 0
    assert f"{tmp_path / 'mine' / 'sub' / 'first.yaml'}  my first recipe" in capsys.readouterr().out
    assert main(["recipes", "--dir", str(tmp_path / "empty")]) == 2
    assert "no recipe files (*.yaml) under" in capsys.readouterr().err
