"""Registration by reference: what the builtins and the bundled plugins register, what a broken reference
reports, and the commands that must stay light (no torch)."""

from __future__ import annotations

import inspect
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from mmadapt import hookimpl
from mmadapt.cli import main
from mmadapt.errors import PluginLoadError
from mmadapt.plugins import PluginManager
from mmadapt.registry import FIRST_PARTY, KINDS, import_reference, is_reference

ROOT = Path(__file__).resolve().parents[1]
#: The builtins' distribution and the bundled plugins'.
OURS = {"mmadapt", *FIRST_PARTY}
HEAVY = ("torch", "torchvision", "open_clip", "timm", "diffusers")


def our_components():
    manager = PluginManager().load()
    assert not manager.failures, [f.error for f in manager.failures]
    components = [c for kind in KINDS for c in manager.registry.all(kind) if c.distribution in OURS]
    assert {c.distribution for c in components} == OURS, "a bundled plugin is not installed"
    return components


@pytest.mark.parametrize("component", our_components(), ids=lambda c: f"{c.kind}-{c.name}")
def test_every_factory_is_a_reference_or_a_class_and_imports(component):
    for factory in (component.factory, component.add_arguments):
        if factory is None or inspect.isclass(factory):
            continue
        assert is_reference(factory), f"{component.kind} {component.name!r}: {factory!r} is neither"
        assert callable(import_reference(factory))


def test_the_testing_kit_registers_by_reference():
    from mmadapt.testing import TinyComponents

    factories = []
    plugin = TinyComponents()
    plugin.register_backbones(lambda name, factory, *rest: factories.append(factory))
    plugin.register_datasets(lambda name, factory, *rest: factories.append(factory))
    assert len(factories) == 2
    for factory in factories:
        assert is_reference(factory) and callable(import_reference(factory)), factory


def test_reference_syntax():
    assert is_reference("mmadapt_prompts.coop:Coop")
    assert is_reference("mmadapt.builtin.openclip:OpenClipBackbone.from_config")
    for bad in ("mmadapt_prompts.coop", "mmadapt_prompts.coop:", ":Coop", "a b:c", "mmadapt.coop:Coop()", 3):
        assert not is_reference(bad)


@dataclass
class NothingConfig:
    """No keys."""


class MisspeltPlugin:
    """Registers a dataset whose reference names a module that does not exist."""

    @hookimpl
    def register_datasets(self, register):
        register("misspelt", "mmadapt_no_such_module.data:build", NothingConfig, "imports nothing")


class MalformedPlugin:
    """Registers a dataset whose factory is no reference."""

    @hookimpl
    def register_datasets(self, register):
        register("malformed", "mmadapt.builtin.image_datasets.build_imagefolder", NothingConfig, "no colon")


def test_a_reference_that_fails_to_import_names_the_plugin_the_reference_and_the_error():
    manager = PluginManager(only=set()).load()
    assert not manager.add_plugin("misspelt-plugin", MisspeltPlugin, "mmadapt-misspelt", "0.1").error
    component = manager.registry.get("dataset", "misspelt")
    with pytest.raises(PluginLoadError) as raised:
        component.build(NothingConfig())
    message = str(raised.value)
    assert "dataset 'misspelt'" in message and "'misspelt-plugin' (mmadapt-misspelt)" in message
    assert "'mmadapt_no_such_module.data:build'" in message
    assert "ModuleNotFoundError: No module named 'mmadapt_no_such_module'" in message


def test_a_malformed_reference_fails_its_plugin_at_registration():
    manager = PluginManager(only=set()).load()
    info = manager.add_plugin("malformed-plugin", MalformedPlugin)
    assert "must be a reference 'package.module:object' or a callable" in info.error
    assert manager.registry.find("dataset", "malformed") is None


class BrokenCommandPlugin:
    """Registers a command whose options module does not exist."""

    @hookimpl
    def register_commands(self, register):
        register("broken", "mmadapt_no_such_module.cli:main", "cannot run",
                 add_arguments="mmadapt_no_such_module.cli:add_arguments")


def test_a_command_whose_options_fail_to_import_breaks_only_itself(register_plugin, capsys):
    register_plugin(BrokenCommandPlugin(), "broken-plugin")
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0 and "broken" in capsys.readouterr().out
    assert main(["broken", "--anything", "x"]) == 2
    error = capsys.readouterr().err
    assert "command 'broken' of plugin 'broken-plugin'" in error
    assert "'mmadapt_no_such_module.cli:add_arguments' failed to import: ModuleNotFoundError" in error


LIGHT_COMMAND = """
import sys
from mmadapt.cli import main
try:
    code = main({argv!r})
except SystemExit as exit:
    code = exit.code
assert code in (0, None), code
heavy = sorted(set({heavy!r}) & set(sys.modules))
assert not heavy, heavy
"""


@pytest.mark.parametrize(
    "argv", [["--help"], ["plugins"], ["validate", "quickstart"], ["recipes"]], ids=lambda argv: " ".join(argv)
)
def test_commands_that_build_nothing_import_no_torch(argv):
    code = LIGHT_COMMAND.format(argv=argv, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
