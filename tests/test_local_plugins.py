"""`adapt -p MODULE` and `adapt --plugin FILE.py`: a plugin that is not installed joins for one command."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from mmadapt.cli import split_local_plugins
from mmadapt.testing import tiny_recipe
from omegaconf import OmegaConf
from plugin_dists import make_entry_point_dist, run_adapt

#: A plugin file: an objective registered by reference to the file's own module.
SCALED_OBJECTIVE = '''
from dataclasses import dataclass

from mmadapt import hookimpl


@dataclass
class ScaledConfig:
    scale: float = 1.0


def build(config, adapter):
    import torch.nn.functional as F

    def scaled(outputs, batch):
        plain = F.cross_entropy(outputs["logits"].float(), batch["label"])
        return config.scale * plain, {"plain": plain}

    return scaled


@hookimpl
def register_objectives(register):
    register("scaled-cross-entropy", "scaled_objective:build", ScaledConfig, "cross-entropy times a factor")
'''


@pytest.fixture
def tiny_entry_point(tmp_path):
    """A folder whose dist-info makes the tiny components an installed plugin of the subprocesses."""
    folder = tmp_path / "installed"
    folder.mkdir()
    make_entry_point_dist(folder, "mmadapt-testing-tiny", "tiny", "mmadapt.testing:tiny_components")
    return folder


@pytest.mark.parametrize(
    ("argv", "local", "rest"),
    [
        (["-p", "a", "--plugin=b.py", "-pc", "run", "r.yaml"], ["a", "b.py", "c"], ["run", "r.yaml"]),
        (["--plugin", "x.py", "plugins"], ["x.py"], ["plugins"]),
        (["kapt", "-p", "mine"], [], ["kapt", "-p", "mine"]),  # after the command: the command's own option
    ],
)
def test_only_options_before_the_command_name_local_plugins(argv, local, rest):
    assert split_local_plugins(argv) == (local, rest)


def test_a_plugin_file_registers_a_component_that_a_run_uses(tmp_path, tiny_entry_point):
    plugin = tmp_path / "elsewhere" / "scaled_objective.py"
    plugin.parent.mkdir()
    plugin.write_text(SCALED_OBJECTIVE)
    recipe = tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.create(tiny_recipe(
        adapter={"name": "linear-probe"}, protocol={"name": "standard"}, train={"epochs": 1},
        objective={"name": "scaled-cross-entropy", "scale": 3.0})), recipe)

    without = run_adapt(["run", str(recipe), "--output-dir", str(tmp_path / "no")], path=tiny_entry_point)
    assert without.returncode == 2 and "unknown objective 'scaled-cross-entropy'" in without.stderr

    out = tmp_path / "run"
    ran = run_adapt(["--plugin", str(plugin), "run", str(recipe), "--output-dir", str(out)], path=tiny_entry_point)
    assert ran.returncode == 0, ran.stderr[-3000:]
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = [step for step in steps if "plain" in step]
    assert logged, "the local objective's term was never logged"
    assert all(step["loss"] == pytest.approx(3.0 * step["plain"], rel=1e-5) for step in logged)
    recorded = json.loads((out / "env.json").read_text())["plugins"]
    assert recorded["scaled_objective"] == {"distribution": None, "version": None, "local": str(plugin)}


def test_a_module_on_the_path_loads_with_p(tmp_path, tiny_entry_point):
    (tiny_entry_point / "scaled_objective.py").write_text(SCALED_OBJECTIVE)
    listed = run_adapt(["-p", "scaled_objective", "plugins"], path=tiny_entry_point)
    assert listed.returncode == 0, listed.stderr
    assert "scaled_objective  (local scaled_objective)" in listed.stdout
    assert "objectives: scaled-cross-entropy" in listed.stdout
    # The next command does not see it.
    assert "scaled_objective" not in run_adapt(["plugins"], path=tiny_entry_point).stdout


def test_a_local_plugin_that_cannot_load_is_a_clear_error(tmp_path):
    missing = run_adapt(["--plugin", str(tmp_path / "absent.py"), "plugins"])
    assert missing.returncode == 2 and "absent.py: no such file" in missing.stderr
    broken = tmp_path / "broken_local.py"
    broken.write_text(textwrap.dedent("""
        import not_a_module_anywhere
    """))
    failed = run_adapt(["--plugin", str(broken), "plugins"])
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "failed to load: ModuleNotFoundError" in failed.stderr and "not_a_module_anywhere" in failed.stderr
    unknown = run_adapt(["-p", "no_such_plugin_module", "plugins"])
    assert unknown.returncode == 2 and "No module named 'no_such_plugin_module'" in unknown.stderr


def test_a_package_from_its_source_folder_brings_its_commands_and_recipes():
    """docs/writing-a-plugin.md: `PYTHONPATH=src adapt -p mmadapt_clip_adapter.plugin ...` before installing."""
    source = Path(__file__).resolve().parents[1] / "docs" / "examples" / "mmadapt-clip-adapter" / "src"
    listed = run_adapt(["-p", "mmadapt_clip_adapter.plugin", "plugins"], path=source)
    assert listed.returncode == 0, listed.stderr
    assert "mmadapt_clip_adapter.plugin  (local mmadapt_clip_adapter.plugin)" in listed.stdout
    recipes = run_adapt(["-p", "mmadapt_clip_adapter.plugin", "recipes"], path=source)
    assert ["clip-adapter-shapes", "mmadapt_clip_adapter.plugin"] in [line.split()[:2] for line in
                                                                       recipes.stdout.splitlines()]
    command = run_adapt(["-p", "mmadapt_clip_adapter.plugin", "clip-adapter", "params", "--width", "768"], path=source)
    assert command.returncode == 0, command.stderr
    assert "294,912 trainable parameters (width 768, hidden width 192)" in command.stdout
