"""A recipe's `requires:` is checked first: one line per unmet requirement with its pip fix, exit code 2."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

import pytest
from mmadapt import hookimpl
from mmadapt.cli import main
from mmadapt.errors import RecipeError
from mmadapt.plugins import get_plugin_manager
from mmadapt.recipe import load_recipe
from omegaconf import OmegaConf
from plugin_dists import run_adapt

UNMET = ["mmadapt-nonexistent-xyz>=0.1", "mmadapt>=99", "mmadapt-foo >>= 1"]
#: The lines the user sees, in the recipe's order. The satisfied requirement (mmadapt>=0.1) is not mentioned.
EXPECTED = [
    "requires: mmadapt-nonexistent-xyz>=0.1 is not installed; fix: pip install 'mmadapt-nonexistent-xyz>=0.1'",
    f"requires: mmadapt>=99 but mmadapt {metadata.version('mmadapt')} is installed; fix: pip install -U 'mmadapt>=99'",
    "requires: 'mmadapt-foo >>= 1' is not a valid requirement",
]


@dataclass
class RecordingConfig:
    pass


class Recorder:
    """A plugin whose backbone and dataset factories record that they were called."""

    def __init__(self) -> None:
        self.built: list[str] = []

    @hookimpl
    def register_backbones(self, register):
        register("recorded-clip", lambda config: self._build("backbone"), RecordingConfig, "records its build")

    @hookimpl
    def register_datasets(self, register):
        register("recorded-data", lambda config: self._build("dataset"), RecordingConfig, "records its build")

    def _build(self, kind: str):
        self.built.append(kind)
        raise RuntimeError(f"the {kind} was built")


def write_recipe(path, requires, **sections):
    recipe = {
        "name": "needs-things",
        "requires": requires,
        "backbone": {"name": "recorded-clip"},
        "data": {"name": "recorded-data"},
        "adapter": {"name": "zeroshot"},
        **sections,
    }
    OmegaConf.save(OmegaConf.create(recipe), path)
    return path


@pytest.fixture
def recorder(register_plugin):
    plugin = Recorder()
    register_plugin(plugin, "recorder")
    return plugin


def problem_lines(stderr: str) -> list[str]:
    return [line.removeprefix("  - ") for line in stderr.splitlines() if line.startswith("  - ")]


def unmet_lines_match(lines: list[str]) -> bool:
    return len(lines) == len(EXPECTED) and all(line.startswith(want) for line, want in zip(lines, EXPECTED))


@pytest.mark.parametrize("command", ["run", "validate"])
def test_cli_reports_each_unmet_requirement_and_builds_nothing(command, recorder, tmp_path, capsys):
    recipe = write_recipe(tmp_path / "recipe.yaml", ["mmadapt>=0.1", *UNMET])
    output = tmp_path / "out"
    extra = ["--output-dir", str(output)] if command == "run" else []
    assert main([command, str(recipe), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {recipe}: 3 problem(s) in the recipe"), err
    assert unmet_lines_match(problem_lines(err)), err
    assert recorder.built == [], "a component was built before the requirements were checked"
    assert not output.exists(), "a run directory was created"


@pytest.mark.parametrize("command", ["run", "validate"])
def test_adapt_exits_2_without_a_traceback(command, tmp_path):
    # A real `adapt` process: exit code and stderr exactly as a user sees them.
    recipe = write_recipe(tmp_path / "recipe.yaml", UNMET)
    output = tmp_path / "out"
    extra = ["--output-dir", str(output)] if command == "run" else []
    result = run_adapt([command, str(recipe), *extra])
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert unmet_lines_match(problem_lines(result.stderr)), result.stderr
    assert not output.exists()


def test_requirements_come_before_component_checks(tmp_path):
    # Components of a missing distribution are unknown too; the requirement is the one thing to fix.
    recipe = write_recipe(tmp_path / "recipe.yaml", ["mmadapt-prompts-nonexistent>=0.1"],
                          adapter={"name": "coop-from-that-plugin", "n_ctx": 4})
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe, registry=get_plugin_manager().registry)
    assert caught.value.problems == [
        "requires: mmadapt-prompts-nonexistent>=0.1 is not installed; "
        "fix: pip install 'mmadapt-prompts-nonexistent>=0.1'"
    ]


def test_met_requirements_pass_with_normalised_names(tiny_plugin, tmp_path):
    # Distribution names compare as pip compares them: case, "-", "_" and "." do not matter.
    recipe = write_recipe(tmp_path / "recipe.yaml", ["MMAdapt>=0.1", "Pluggy>=1"],
                          backbone={"name": "tiny-clip"}, data={"name": "tiny-colours"})
    loaded = load_recipe(recipe, registry=get_plugin_manager().registry)
    assert loaded.requires == ["MMAdapt>=0.1", "Pluggy>=1"]


def test_each_problem_is_one_line(tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml", UNMET)
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe, registry=get_plugin_manager().registry)
    assert all("\n" not in problem for problem in caught.value.problems), caught.value.problems


def test_a_single_string_is_one_clear_problem(tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml", "mmadapt-foo>=0.2")
    with pytest.raises(RecipeError) as caught:
        load_recipe(recipe, registry=get_plugin_manager().registry)
    assert len(caught.value.problems) == 1 and "list" in caught.value.problems[0], caught.value.problems


def test_a_number_is_a_recipe_error(tmp_path):
    recipe = write_recipe(tmp_path / "recipe.yaml", 5)
    with pytest.raises(RecipeError):
        load_recipe(recipe, registry=get_plugin_manager().registry)
