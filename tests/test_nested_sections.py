"""Nested component sections: a component's config holding sections of other components.

They are validated once with the recipe (file, key path and closest key in every message), their
defaults are written to resolved.yaml, and resuming refuses a run whose nested defaults changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from mmadapt import Protocol, Section, UserError, get_plugin_manager, hookimpl, nested_section, nested_sections
from mmadapt.plugins import PluginManager
from mmadapt.runner import resume_run
from mmadapt.testing import TinyColoursConfig, TinyComponents, check_recipe, run_recipe, tiny_recipe
from omegaconf import OmegaConf


@dataclass
class WithExtrasConfig:
    """A protocol that builds further datasets and an optional second backbone."""

    extras: list[Section] = nested_sections("dataset")
    teacher: Section | None = nested_section("backbone", optional=True)
    repeats: int = 1


@dataclass
class WrappedConfig:
    """A metric that is another metric: a required nested section."""

    inner: Section = nested_section("metric")


@dataclass
class ExtraColoursConfig(TinyColoursConfig):
    """``tiny-colours`` under another name, so only nested sections use it."""

    image_size: int = 32


@dataclass
class NewerExtraColoursConfig(TinyColoursConfig):
    """The same dataset as a later release of its plugin ships it: another default."""

    image_size: int = 24


class WithExtras(Protocol):
    """Evaluates the data's test split after building every nested section."""

    def run(self, run: Any) -> dict[str, float]:
        """Build the extras (and the teacher), then evaluate."""
        assert all(len(extra.build().split("test")) > 0 for extra in self.config.extras)
        return self.evaluate(run)

    def evaluate(self, run: Any) -> dict[str, float]:
        """The test split's metrics."""
        return run.evaluate("test")


class NestingPlugin:
    """Registers ``with-extras``, ``wrapped`` and the ``extra-colours`` dataset with ``extra_config``."""

    def __init__(self, extra_config: type = ExtraColoursConfig) -> None:
        self.extra_config = extra_config

    @hookimpl
    def register_protocols(self, register: Callable[..., None]) -> None:
        """Register ``with-extras``."""
        register("with-extras", WithExtras, WithExtrasConfig, "a protocol with nested sections")

    @hookimpl
    def register_metrics(self, register: Callable[..., None]) -> None:
        """Register ``wrapped``."""
        register("wrapped", lambda config: config.inner.build(), WrappedConfig, "another metric")

    @hookimpl
    def register_datasets(self, register: Callable[..., None]) -> None:
        """Register ``extra-colours``."""
        register("extra-colours", build_extra_colours, self.extra_config, "tiny-colours under another name")


def build_extra_colours(config: TinyColoursConfig) -> Any:
    """The ``tiny-colours`` bundle of ``config``."""
    return get_plugin_manager().registry.get("dataset", "tiny-colours").build(config)


@pytest.fixture
def nesting_plugin(tiny_plugin, register_plugin):
    return register_plugin(NestingPlugin(), "nesting")


def extras_recipe(**protocol: Any) -> dict[str, Any]:
    extras = [{"name": "extra-colours", "n_classes": 3}, "extra-colours"]
    return tiny_recipe(protocol={"name": "with-extras", "extras": extras, **protocol})


def test_nested_sections_become_validated_sections(nesting_plugin):
    recipe = check_recipe(extras_recipe(teacher={"name": "tiny-clip", "arch": "resnet"}))
    config = recipe.protocol.config
    assert [extra.name for extra in config.extras] == ["extra-colours", "extra-colours"]
    assert [extra.config.n_classes for extra in config.extras] == [3, 4]
    assert isinstance(config.extras[0].config, ExtraColoursConfig)
    assert config.teacher.name == "tiny-clip" and config.teacher.config.arch == "resnet"
    assert check_recipe(extras_recipe()).protocol.config.teacher is None
    assert check_recipe(tiny_recipe(protocol={"name": "with-extras"})).protocol.config.extras == []


def test_problems_inside_nested_sections_name_the_file_and_the_key_path(nesting_plugin, tmp_path):
    recipe = extras_recipe(teacher={"name": "tiny-clip", "arh": "resnet"})
    recipe["protocol"]["extras"] = [{"name": "extra-colours", "n_clases": 3}, {"name": "extra-colour"}, {"root": "x"}]
    recipe["eval"] = {"metrics": ["wrapped", {"name": "wrapped", "inner": {"name": "f1", "threshhold": 0.5}}]}
    path = tmp_path / "nested.yaml"
    OmegaConf.save(OmegaConf.create(recipe), path)
    with pytest.raises(UserError) as error:
        run_recipe(path, tmp_path / "out")
    message = str(error.value)
    assert message.startswith(f"{path}: 6 problem(s) in the recipe")
    for line in (
        "protocol.extras[0].n_clases: unknown key (dataset 'extra-colours') (did you mean 'n_classes'?)",
        "protocol.extras[1].name: unknown dataset 'extra-colour' (did you mean 'extra-colours'?)",
        "protocol.extras[2]: must be a mapping with a 'name' key naming a dataset",
        "protocol.teacher.arh: unknown key (backbone 'tiny-clip') (did you mean 'arch'?)",
        "eval.metrics[0].inner: required metric section (metric 'wrapped') is missing",
        "eval.metrics[1].inner.threshhold: unknown key (metric 'f1') (did you mean 'threshold'?)",
    ):
        assert f"  - {line}" in message, line


def test_a_nested_list_must_be_a_list(nesting_plugin):
    with pytest.raises(UserError, match=r"protocol.extras: expected a list of dataset sections"):
        check_recipe(tiny_recipe(protocol={"name": "with-extras", "extras": "extra-colours"}))


def test_resolved_yaml_holds_the_defaults_of_nested_sections(nesting_plugin, tmp_path):
    run_recipe(extras_recipe(teacher="tiny-clip"), tmp_path)
    resolved = OmegaConf.to_container(OmegaConf.load(tmp_path / "run" / "resolved.yaml"))
    extras = resolved["protocol"]["extras"]
    assert extras[0] == {
        "name": "extra-colours", "shots": None, "on_bad_image": "error", "augment": "none", "knowledge_file": None,
        "n_classes": 3, "train_per_class": 16, "test_per_class": 8, "image_size": 32, "seed": 0,
    }
    assert extras[1]["n_classes"] == 4
    assert resolved["protocol"]["teacher"] == {"name": "tiny-clip", "arch": "vit", "seed": 0}
    assert resolved["protocol"]["repeats"] == 1


def test_resume_refuses_a_run_whose_nested_default_changed(nesting_plugin, tmp_path):
    run_recipe(extras_recipe(), tmp_path)

    def manager(extra_config: type) -> PluginManager:
        loaded = PluginManager().load(entry_points=False)
        loaded.add_plugin("tiny", lambda: TinyComponents())
        loaded.add_plugin("nesting", lambda: NestingPlugin(extra_config))
        return loaded

    # Only the nested dataset's default differs: the recipe and every top-level section are the same.
    with pytest.raises(UserError, match="resolved.yaml no longer matches"):
        resume_run(tmp_path / "run", manager=manager(NewerExtraColoursConfig))
    assert resume_run(tmp_path / "run", manager=manager(ExtraColoursConfig))["metrics"]
