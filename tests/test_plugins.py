"""The plugin manager: builtins, entry points, failure isolation, strict mode, duplicates."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from mmadapt.plugins import BUILTIN_PLUGINS, PluginManager
from mmadapt.registry import FIRST_PARTY, KINDS
from plugin_dists import make_plugin_dist, run_adapt

BROKEN = """
raise ImportError("the frobnicator extension is not compiled")
"""

GOOD = """
from dataclasses import dataclass
from mmadapt import hookimpl

@dataclass
class PromptTestConfig:
    n_ctx: int = 4

def build(config, backbone, task):
    raise RuntimeError("not needed")

@hookimpl
def register_adapters(register):
    register("prompt-test", build, PromptTestConfig, "an adapter with an n_ctx key")

@hookimpl
def register_commands(register):
    register("hello", lambda args: print("hello from a plugin") or 0, "say hello")
"""

TYPO_HOOK = """
from mmadapt import hookimpl

@hookimpl
def register_adaptors(register):
    pass
"""


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("broken_plugin", "good_plugin", "typo_plugin", "dup_plugin"):
        sys.modules.pop(name, None)


def test_builtins_register_through_the_same_path(plugin_dir):
    manager = PluginManager(only=set()).load()
    assert list(manager.plugins)[: len(BUILTIN_PLUGINS)] == list(BUILTIN_PLUGINS)
    assert not manager.failures, [f.error for f in manager.failures]
    zeroshot = manager.registry.get("adapter", "zeroshot")
    assert zeroshot.plugin == "mmadapt.builtin.plugin"
    assert zeroshot.distribution == "mmadapt" and zeroshot.version


def test_broken_plugin_is_recorded_and_others_keep_working(plugin_dir):
    make_plugin_dist(plugin_dir, "mmadapt-broken", "broken_plugin", BROKEN)
    make_plugin_dist(plugin_dir, "mmadapt-good", "good_plugin", GOOD)
    manager = PluginManager(strict=False, only=None).load()
    failed = {f.name: f for f in manager.failures}
    assert "broken_plugin" in failed
    assert failed["broken_plugin"].distribution == "mmadapt-broken"
    assert "frobnicator" in failed["broken_plugin"].error
    good = manager.registry.get("adapter", "prompt-test")
    assert (good.distribution, good.version) == ("mmadapt-good", "0.3.1")
    # A component nobody registered: the message carries the broken plugin's error.
    message = manager.registry.explain_missing("adapter", "frobnicate")
    assert "mmadapt-broken" in message and "frobnicator extension is not compiled" in message


def test_strict_mode_reraises(plugin_dir):
    make_plugin_dist(plugin_dir, "mmadapt-broken", "broken_plugin", BROKEN)
    with pytest.raises(ImportError, match="frobnicator"):
        PluginManager(strict=True, only=None).load()


def test_load_plugins_selects_entry_points(plugin_dir):
    make_plugin_dist(plugin_dir, "mmadapt-broken", "broken_plugin", BROKEN)
    make_plugin_dist(plugin_dir, "mmadapt-good", "good_plugin", GOOD)
    manager = PluginManager(strict=True, only={"mmadapt-good"}).load()
    assert "broken_plugin" not in manager.plugins
    assert manager.registry.find("adapter", "prompt-test") is not None


def test_misspelled_hook_is_an_error(plugin_dir):
    make_plugin_dist(plugin_dir, "mmadapt-typo", "typo_plugin", TYPO_HOOK)
    with pytest.raises(Exception, match="register_adaptors"):
        PluginManager(strict=False, only={"typo_plugin"}).load()


def test_duplicate_component_names_both_plugins(plugin_dir):
    make_plugin_dist(plugin_dir, "mmadapt-dup", "dup_plugin", GOOD.replace("prompt-test", "zeroshot"))
    manager = PluginManager(strict=False, only={"dup_plugin"}).load()
    error = manager.plugins["dup_plugin"].error
    assert "registered twice" in error and "mmadapt.builtin.plugin" in error and "dup_plugin" in error


HALF_DUPLICATE = GOOD + """
@hookimpl
def register_datasets(register):
    register("imagefolder", build, None, "clashes with the builtin")
"""


def test_a_plugin_failing_registration_adds_none_of_its_components(plugin_dir):
    make_plugin_dist(plugin_dir, "mmadapt-dup", "dup_plugin", HALF_DUPLICATE)
    manager = PluginManager(strict=False, only={"dup_plugin"}).load()
    assert "registered twice" in manager.plugins["dup_plugin"].error
    assert manager.registry.find("adapter", "prompt-test") is None
    assert manager.registry.find("command", "hello") is None


def test_unknown_first_party_component_names_the_package():
    manager = PluginManager(only=set()).load()
    message = manager.registry.explain_missing("adapter", "coop")
    if manager.registry.find("adapter", "coop") is None:
        assert "pip install mmadapt-prompts" in message


REPO = Path(__file__).resolve().parents[1]


def first_party_distributions() -> list[str]:
    """The distribution name of every plugin in the repository's ``plugins/`` folder."""
    return sorted(re.search(r'^name = "([^"]+)"', path.read_text(), re.M).group(1)
                  for path in REPO.glob("plugins/*/pyproject.toml"))


def test_first_party_names_the_repositorys_plugins():
    assert sorted(FIRST_PARTY) == first_party_distributions()


@pytest.mark.parametrize("distribution", first_party_distributions())
def test_first_party_lists_exactly_what_each_installed_plugin_registers(distribution):
    manager = PluginManager(only={distribution}).load()
    if not any(info.distribution == distribution for info in manager.plugins.values()):
        pytest.skip(f"{distribution} is not installed")
    assert not manager.failures, [f.error for f in manager.failures]
    registered: dict[str, tuple[str, ...]] = {}
    for kind in KINDS:
        names = tuple(c.name for c in manager.registry.all(kind) if c.distribution == distribution)
        if names and kind != "command":
            registered[kind] = names
    assert {kind: tuple(sorted(names)) for kind, names in FIRST_PARTY[distribution].items()} == registered


RENAMED_IN_A_RECIPE = {
    "dataset": "data: {name: coop, root: somewhere}\nadapter: {name: zeroshot}\n",
    "protocol": "data: {name: imagefolder, root: somewhere}\nadapter: {name: zeroshot}\nprotocol: {name: zeroshot}\n",
}


@pytest.mark.parametrize(("kind", "old", "new"), [("dataset", "coop", "coop-split"),
                                                  ("protocol", "zeroshot", "eval-only")])
def test_a_renamed_component_says_its_new_name(plugin_dir, kind, old, new):
    recipe = plugin_dir / "old-names.yaml"
    recipe.write_text("backbone: {name: openclip, arch: ViT-B-32, pretrained: openai}\n" + RENAMED_IN_A_RECIPE[kind])
    result = run_adapt(["validate", str(recipe)], path=plugin_dir)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{kind} '{old}' was renamed to '{new}'" in result.stderr


def test_cli_plugins_survives_broken_plugin(plugin_dir):
    make_plugin_dist(plugin_dir, "mmadapt-broken", "broken_plugin", BROKEN)
    make_plugin_dist(plugin_dir, "mmadapt-good", "good_plugin", GOOD)
    text = run_adapt(["plugins"], path=plugin_dir)
    assert text.returncode == 0, text.stderr
    assert "FAILED TO LOAD: ImportError: the frobnicator extension is not compiled" in text.stdout
    as_json = run_adapt(["plugins", "--json"], path=plugin_dir)
    report = {entry["name"]: entry for entry in json.loads(as_json.stdout)}
    assert report["good_plugin"]["components"] == {"adapter": ["prompt-test"], "command": ["hello"]}
    assert report["good_plugin"]["version"] == "0.3.1"
    assert "frobnicator" in report["broken_plugin"]["error"]
    assert report["mmadapt.builtin.plugin"]["components"]["adapter"] == ["finetune", "linear-probe", "lora", "zeroshot"]
    hello = run_adapt(["hello"], path=plugin_dir)
    assert hello.returncode == 0 and "hello from a plugin" in hello.stdout


def test_recipe_typos_are_reported_together(plugin_dir):
    make_plugin_dist(plugin_dir, "mmadapt-good", "good_plugin", GOOD)
    recipe = plugin_dir / "typo.yaml"
    recipe.write_text(
        "name: typo\n"
        "backbone: {name: openclip, arch: ViT-B-32, pretrained: openai}\n"
        "data: {name: imagefolder, root: somewhere}\n"
        "adapter: {name: prompt-test, n_ctxx: 4}\n"
        "train: {lrr: 0.1}\n"
    )
    result = run_adapt(["validate", str(recipe)], path=plugin_dir)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert str(recipe) in result.stderr
    assert "train.lrr" in result.stderr and "'lr'" in result.stderr
    assert "adapter.n_ctxx" in result.stderr and "'n_ctx'" in result.stderr


def test_help_does_not_import_torch_with_every_installed_plugin():
    import subprocess

    code = (
        "import sys\n"
        "from mmadapt.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = sorted(m for m in ('torch', 'open_clip', 'timm', 'diffusers', 'peft') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "HEAVY []" in result.stdout, result.stdout + result.stderr


def test_list_entry_override_is_a_clear_error(plugin_dir):
    recipe = plugin_dir / "r.yaml"
    recipe.write_text("backbone: {name: openclip, arch: ViT-B-32, pretrained: openai}\n"
                      "data: {name: imagefolder, root: somewhere}\nadapter: {name: zeroshot}\n")
    result = run_adapt(["validate", str(recipe), "eval.metrics[0]=f1"], path=plugin_dir)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "eval.metrics" in result.stderr


def test_recipes_with_a_broken_plugin_installed(plugin_dir):
    from mmadapt.testing import tiny_recipe
    from omegaconf import OmegaConf
    from plugin_dists import make_entry_point_dist

    make_plugin_dist(plugin_dir, "mmadapt-broken", "broken_plugin", BROKEN)
    make_entry_point_dist(plugin_dir, "mmadapt-testing-tiny", "tiny", "mmadapt.testing:tiny_components")
    unaffected = plugin_dir / "unaffected.yaml"
    OmegaConf.save(OmegaConf.create(tiny_recipe()), unaffected)
    ran = run_adapt(["run", str(unaffected), "--output-dir", str(plugin_dir / "run")], path=plugin_dir)
    assert ran.returncode == 0, ran.stderr
    assert (plugin_dir / "run" / "summary.json").is_file()

    needs_broken = plugin_dir / "needs-broken.yaml"
    OmegaConf.save(OmegaConf.create(tiny_recipe(adapter={"name": "frobnicator"})), needs_broken)
    failed = run_adapt(["run", str(needs_broken)], path=plugin_dir)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert "mmadapt-broken" in failed.stderr and "the frobnicator extension is not compiled" in failed.stderr
