"""Checkpoint folders: corrupt or tampered files are named with the fix; resume falls back; nothing is unpickled."""

from __future__ import annotations

import json

import pytest
import torch
from mmadapt import CorruptCheckpointError, RunState, final_checkpoint
from mmadapt.cli import main
from mmadapt.testing import run_recipe, tiny_recipe


class Payload:
    """A class only a full unpickler can rebuild: a tampered state.pt carries one."""


def probe_recipe():
    return tiny_recipe(adapter={"name": "linear-probe"}, protocol={"name": "standard"},
                       train={"epochs": 3, "optimizer": "adamw", "lr": 0.05, "keep_checkpoints": 2})


def test_final_checkpoint_is_the_one_with_most_steps(tiny_plugin, tmp_path):
    run_recipe(probe_recipe(), tmp_path)
    assert final_checkpoint(tmp_path / "run").name == "train-epoch0003"
    assert final_checkpoint(tmp_path / "nothing") is None


def test_eval_of_a_truncated_checkpoint_names_the_file_and_the_fix(tiny_plugin, tmp_path, capsys):
    run_recipe(probe_recipe(), tmp_path)
    weights = tmp_path / "run" / "checkpoints" / "train-epoch0003" / "adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert str(weights) in err and "Delete the folder" in err and "Traceback" not in err


def test_resume_falls_back_to_the_previous_checkpoint_when_state_was_tampered_with(tiny_plugin, tmp_path, capsys):
    summary = run_recipe(probe_recipe(), tmp_path)
    run_dir = tmp_path / "run"
    (run_dir / "summary.json").unlink()
    state = run_dir / "checkpoints" / "train-epoch0003" / "state.pt"
    torch.save({"optimizer": Payload()}, state)
    with pytest.raises(CorruptCheckpointError, match="state.pt: cannot read this checkpoint"):
        from mmadapt.checkpoints import read_checkpoints

        read_checkpoints(run_dir)[-1].training_state()
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir)]) == 0
    assert "resuming from the checkpoint before it" in capsys.readouterr().err
    resumed = json.loads((run_dir / "summary.json").read_text())
    assert resumed["metrics"] == summary["metrics"] and resumed["steps"] == summary["steps"]


def test_run_state_takes_tensors_and_json_values_only():
    state = RunState()
    state["residual"] = torch.ones(3)
    state["restarts"] = {"count": 2, "names": ["a"]}
    with pytest.raises(TypeError, match="tensor or a JSON value"):
        state["bad"] = Payload()
    with pytest.raises(TypeError, match="tensor or a JSON value"):
        state["tuple"] = (1, 2)  # JSON would give it back as a list
    tensors, values = state.split()
    restored = RunState()
    restored.replace_with(tensors, values)
    assert torch.equal(restored["residual"], state["residual"]) and restored["restarts"] == state["restarts"]


def test_load_run_rebuilds_the_adapter_with_the_checkpoint_eval_uses(tiny_plugin, tmp_path):
    from mmadapt import load_run
    from safetensors.torch import load_file

    run_recipe(probe_recipe(), tmp_path)
    finished = load_run(tmp_path / "run")
    assert finished.checkpoint == final_checkpoint(tmp_path / "run")
    saved = load_file(str(finished.checkpoint / "adapter.safetensors"))
    state = finished.adapter.trainable_state_dict()
    assert saved.keys() == state.keys() and all(torch.equal(saved[k], state[k]) for k in saved)
    assert not finished.adapter.training and finished.recipe.adapter.name == "linear-probe"
    assert finished.backbone is finished.adapter.backbone
