"""The recipes that installed plugins ship (``register_recipes``): listed, found by name, copied to edit."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from .errors import UserError, did_you_mean
from .plugins import PluginManager


@dataclass(frozen=True)
class ShippedRecipe:
    """One recipe file of a plugin: ``name`` is its path inside the plugin's folder without ``.yaml``."""

    name: str
    plugin: str
    distribution: str | None
    path: Path

    @property
    def qualified_name(self) -> str:
        """``PLUGIN:NAME``, which picks this recipe when two plugins ship the same name."""
        return f"{self.plugin}:{self.name}"


def shipped_recipes(manager: PluginManager) -> list[ShippedRecipe]:
    """Every recipe of every loaded plugin, sorted by name, then plugin."""
    found = [
        ShippedRecipe(path.relative_to(folder.path).with_suffix("").as_posix(), folder.plugin, folder.distribution,
                      path)
        for folder in manager.recipe_folders
        for path in folder.path.rglob("*.yaml")
    ]
    return sorted(found, key=lambda recipe: (recipe.name, recipe.plugin))


def find_recipe(name: str, manager: PluginManager) -> ShippedRecipe:
    """The shipped recipe ``NAME`` (or ``PLUGIN:NAME``); a ``UserError`` with the closest names otherwise."""
    recipes = shipped_recipes(manager)
    plugin, _, short = name.rpartition(":")
    matches = [r for r in recipes if r.name == short and (not plugin or r.plugin == plugin)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        choices = ", ".join(r.qualified_name for r in matches)
        raise UserError(f"recipe {name!r} is shipped by several plugins; name one of them: {choices}")
    known = [r.name for r in recipes]
    raise UserError(
        f"{name}: no such recipe file, and no installed plugin ships a recipe named {short!r}"
        f"{did_you_mean(short, known)}; `adapt recipes` lists the shipped ones"
    )


def resolve_recipe(name_or_path: str, manager: PluginManager) -> Path:
    """The file ``adapt run`` reads: ``name_or_path`` itself when it is a file (a path wins), else a shipped recipe."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.suffix not in (".yaml", ".yml"):
        return find_recipe(name_or_path, manager).path
    # A missing file: say so, and name the shipped recipe it may have meant (`recipes/quickstart.yaml`).
    names = {r.name for r in shipped_recipes(manager)}
    inside = path.with_suffix("").as_posix()
    meant = next((name for name in (inside, inside.removeprefix("recipes/"), path.stem) if name in names), None)
    hint = f"; the shipped recipe {meant!r} runs by name: adapt run {meant}" if meant else ""
    raise UserError(f"{path}: recipe file not found{hint} (`adapt recipes` lists the shipped recipes)")


def copy_recipe(name: str, destination: str | Path, manager: PluginManager) -> Path:
    """Copy the shipped recipe ``name`` to ``destination`` (a folder, or a new file); never overwrite."""
    recipe = find_recipe(name, manager)
    target = Path(destination)
    if target.is_dir():
        target = target / recipe.path.name
    if target.exists():
        raise UserError(f"{target} exists; give another destination (a folder or a new .yaml file)")
    if not target.parent.is_dir():
        raise UserError(f"{target.parent}/ does not exist; create it or give another destination")
    shutil.copyfile(recipe.path, target)
    return target
