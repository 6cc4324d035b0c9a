"""Base-to-novel protocol, `adapt eval` and `adapt runs` on the tiny components."""

from __future__ import annotations

import json

import pytest
from mmadapt.cli import main
from mmadapt.errors import UserError
from mmadapt.metrics import harmonic_mean
from mmadapt.testing import run_recipe, tiny_recipe


def test_base2novel_reports_base_new_and_harmonic_mean(tiny_plugin, tmp_path):
    recipe = tiny_recipe(data={"n_classes": 5, "shots": 4}, protocol={"name": "base2novel"})
    summary = run_recipe(recipe, tmp_path)
    metrics = summary["metrics"]
    assert set(metrics) == {"base/accuracy", "new/accuracy", "hm/accuracy"}
    assert metrics["hm/accuracy"] == pytest.approx(harmonic_mean(metrics["base/accuracy"], metrics["new/accuracy"]))
    few_shot = json.loads((tmp_path / "run" / "few_shot.json").read_text())
    assert few_shot["shots"] == 4 and len(few_shot["indices"]["train"]) == 5 * 4


def test_progress_bars_name_the_splits_as_the_recipe_and_metrics_do(tiny_plugin, tmp_path, monkeypatch):
    import mmadapt.passes

    shown = []
    tqdm = mmadapt.passes.tqdm

    def recording(*args, desc=None, **kwargs):
        shown.append(desc)
        return tqdm(*args, desc=desc, **kwargs)

    monkeypatch.setattr(mmadapt.passes, "tqdm", recording)
    run_recipe(tiny_recipe(protocol={"name": "base2novel"}), tmp_path)
    # The new classes' test split is one the protocol built: it is named by its metrics' prefix.
    assert {"features test", "features new", "eval base", "eval new"} <= set(shown), shown
    assert not any("Split" in desc for desc in shown)


def test_base2novel_with_an_adapter_that_cannot_switch_classes_fails_clearly(tiny_plugin, tmp_path):
    recipe = tiny_recipe(adapter={"name": "linear-probe"}, protocol={"name": "base2novel"}, train={"epochs": 1})
    with pytest.raises(UserError, match="cannot evaluate on classes it was not trained on"):
        run_recipe(recipe, tmp_path)


def test_eval_and_runs_commands(tiny_plugin, tmp_path, capsys, monkeypatch):
    recipe = tiny_recipe(adapter={"name": "linear-probe"}, protocol={"name": "standard"},
                         train={"epochs": 5, "optimizer": "adamw", "lr": 0.05})
    summary = run_recipe(recipe, tmp_path / "runs" / "tiny")
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "runs" / "tiny" / "run")]) == 0
    evals = list((tmp_path / "runs" / "tiny" / "run" / "evals").glob("*/summary.json"))
    assert len(evals) == 1
    assert json.loads(evals[0].read_text())["metrics"] == summary["metrics"]
    assert "test" in capsys.readouterr().out
    assert main(["runs", str(tmp_path / "runs")]) == 0
    assert "test/accuracy=" in capsys.readouterr().out


def test_eval_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_initial_evaluation_of_a_zeroshot_initialised_probe_is_zero_shot(tiny_plugin, tmp_path):
    zeroshot = run_recipe(tiny_recipe(), tmp_path / "zeroshot")
    probe = run_recipe(
        tiny_recipe(adapter={"name": "linear-probe", "init": "zeroshot"},
                    protocol={"name": "standard", "evaluate_initial": True}, train={"epochs": 1}),
        tmp_path / "probe",
    )
    assert probe["metrics"]["initial/test/accuracy"] == zeroshot["metrics"]["test/accuracy"]
    assert "test/accuracy" in probe["metrics"]
