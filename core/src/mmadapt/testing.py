"""Pytest fixtures and helpers for plugin authors (loaded through the ``pytest11`` entry point).

Fixtures: ``plugin_manager`` (a fresh manager with the builtins and installed plugins, installed as
the process-wide one for the test), ``register_plugin`` (add a plugin object for one test) and
``tiny_plugin`` (registers the ``tiny-clip`` backbone and the ``tiny-colours`` dataset). Helpers:
``tiny_recipe(**sections)`` and ``run_recipe(recipe, output_dir) -> summary``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .config import DataConfig
from .hookspecs import hookimpl
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


# -- tiny components ------------------------------------------------------------------------------

TINY_COLOURS = ("red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple")
_RGB = {
    "red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 30),
    "magenta": (220, 30, 220), "cyan": (30, 220, 220), "orange": (240, 140, 20), "purple": (120, 40, 170),
}


@dataclass
class TinyClipConfig:
    """A randomly initialised tiny open_clip CLIP (32 x 32 images, width 64)."""

    arch: str = "vit"
    seed: int = 0


@dataclass
class TinyColoursConfig(DataConfig):
    """Noisy images whose dominant colour is the class: separable, so learning shows quickly."""

    n_classes: int = 4
    train_per_class: int = 16
    test_per_class: int = 8
    image_size: int = 32
    seed: int = 0


def _build_tiny_clip(config: TinyClipConfig) -> Any:
    from .testing_models import tiny_openclip_backbone

    return tiny_openclip_backbone(config.arch, config.seed)


def _build_tiny_colours(config: TinyColoursConfig) -> Any:
    from .data import DataBundle, Task

    if not 2 <= config.n_classes <= len(TINY_COLOURS):
        raise ValueError(f"data.n_classes must be between 2 and {len(TINY_COLOURS)}; got {config.n_classes}")
    classnames = list(TINY_COLOURS[: config.n_classes])
    splits = {
        name: _colour_split(config, split_seed, per_class)
        for name, split_seed, per_class in (("train", 1, config.train_per_class), ("test", 2, config.test_per_class))
    }
    return DataBundle(Task(classnames, templates=["a photo of a {} thing."], name="tiny-colours"), splits)


def _colour_split(config: TinyColoursConfig, split_seed: int, per_class: int) -> Any:
    import numpy as np
    from PIL import Image

    from .data import Split

    class ColourSplit(Split):
        def _load(self, i: int) -> dict[str, Any]:
            rng = np.random.default_rng([config.seed, split_seed, i])
            colour = np.array(_RGB[TINY_COLOURS[self.labels[i]]], dtype=np.float32)
            noise = rng.normal(0, 40, size=(config.image_size, config.image_size, 3))
            pixels = np.clip(colour + noise, 0, 255).astype(np.uint8)
            return {"image": Image.fromarray(pixels)}

    labels = [c for _ in range(per_class) for c in range(config.n_classes)]
    return ColourSplit(labels, config.n_classes, on_bad_image=config.on_bad_image)


class TinyComponents:
    """A plugin with the ``tiny-clip`` backbone and the ``tiny-colours`` dataset, for fast tests."""

    @hookimpl
    def register_backbones(self, register: Callable[..., None]) -> None:
        register("tiny-clip", _build_tiny_clip, TinyClipConfig, "tiny random-weight open_clip CLIP for tests")

    @hookimpl
    def register_datasets(self, register: Callable[..., None]) -> None:
        register("tiny-colours", _build_tiny_colours, TinyColoursConfig, "generated colour images for tests")


#: Entry-point target (``mmadapt.testing:tiny_components``) for subprocess tests.
tiny_components = TinyComponents()


@pytest.fixture
def tiny_plugin(register_plugin: Callable[..., Any]) -> Any:
    """Registers ``tiny-clip`` and ``tiny-colours`` for this test."""
    return register_plugin(TinyComponents(), "mmadapt-testing-tiny")


def tiny_recipe(**sections: Any) -> dict[str, Any]:
    """A runnable recipe mapping on the tiny components; ``sections`` replace or extend its sections."""
    recipe: dict[str, Any] = {
        "name": "tiny",
        "seed": 1,
        "backbone": {"name": "tiny-clip"},
        "data": {"name": "tiny-colours"},
        "adapter": {"name": "zeroshot"},
        "protocol": {"name": "zeroshot"},
        "train": {"epochs": 2, "batch_size": 16, "lr": 0.01, "precision": "fp32", "log_every": 1},
    }
    for key, value in sections.items():
        recipe[key] = {**recipe[key], **value} if isinstance(value, dict) and key in recipe else value
    return recipe


def run_recipe(recipe: dict[str, Any] | str | Path, output_dir: str | Path, overrides: list[str] | None = None,
               seeds: list[int] | None = None) -> dict[str, Any]:
    """Run a recipe (a mapping or a YAML path) with the current plugin manager; return its summary."""
    from omegaconf import OmegaConf

    from .runner import run_recipe_file

    output_dir = Path(output_dir)
    if not isinstance(recipe, (str, Path)):
        output_dir.mkdir(parents=True, exist_ok=True)
        path = output_dir / "input-recipe.yaml"
        OmegaConf.save(OmegaConf.create(recipe), path)
        recipe = path
    return run_recipe_file(recipe, overrides, output_dir=output_dir / "run", seeds=seeds)
