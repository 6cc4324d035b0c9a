"""Lifecycle observers: a plugin that raises is reported and the run goes on, unless strict."""

from __future__ import annotations

import json

import pytest
from mmadapt import hookimpl
from mmadapt.plugins import PluginManager, get_plugin_manager, reset_plugin_manager
from mmadapt.testing import TinyComponents, run_recipe, tiny_recipe

TRAINING = {"adapter": {"name": "linear-probe"}, "protocol": {"name": "standard"},
            "train": {"epochs": 1, "log_every": 1}}


class BrokenObserver:
    """Raises at every logged step."""

    @hookimpl
    def on_step_end(self, run, step, logs):
        raise RuntimeError(f"dashboard unreachable at step {step}")


class Recorder:
    """Records what every lifecycle hook receives."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    @hookimpl
    def on_step_end(self, run, step, logs):
        self.calls.append(("on_step_end", step))

    @hookimpl
    def on_eval_end(self, run, split, metrics):
        self.calls.append(("on_eval_end", sorted(metrics)))

    @hookimpl
    def on_run_end(self, run, summary):
        self.calls.append(("on_run_end", summary["steps"]))


def test_an_observer_that_raises_is_reported_and_the_run_finishes(register_plugin, tiny_plugin, tmp_path):
    register_plugin(BrokenObserver(), "broken-observer")
    recorder = Recorder()
    register_plugin(recorder, "recorder")
    with pytest.warns(RuntimeWarning, match=r"plugin 'broken-observer' raised in on_step_end: RuntimeError: "
                                            r"dashboard unreachable"):
        summary = run_recipe(tiny_recipe(**TRAINING), tmp_path)
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == summary
    steps = summary["steps"]
    assert steps > 0
    # The other observer still saw every step, the evaluation and the end of the run.
    assert recorder.calls == [*(("on_step_end", step) for step in range(1, steps + 1)),
                              ("on_eval_end", ["test/accuracy"]), ("on_run_end", steps)]


@pytest.fixture
def strict_manager(monkeypatch):
    monkeypatch.setenv("MMADAPT_STRICT_PLUGINS", "1")
    previous = get_plugin_manager()
    manager = PluginManager().load()
    reset_plugin_manager(manager)
    yield manager
    reset_plugin_manager(previous)


def test_with_strict_plugins_the_observers_error_stops_the_run(strict_manager, tmp_path):
    strict_manager.add_plugin("mmadapt-testing-tiny", TinyComponents)
    strict_manager.add_plugin("broken-observer", BrokenObserver)
    with pytest.raises(RuntimeError, match="dashboard unreachable at step 1"):
        run_recipe(tiny_recipe(**TRAINING), tmp_path)
    assert not (tmp_path / "run" / "summary.json").exists()
