"""One assembly for every purpose: few-shot items saved by name and reused by resume, adapt eval and load_run."""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

import pytest
from mmadapt import UserError
from mmadapt.testing import run_recipe, tiny_recipe
from omegaconf import OmegaConf
from plugin_dists import run_adapt

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "yellow": (230, 220, 40)}


def colour_folder(root, per_class=6, seed=0):
    """An image folder of noisy colour squares: ``root/{train,test}/<colour>/img<i>.png``."""
    from PIL import Image

    rng = random.Random(seed)
    for split, count in (("train", per_class), ("test", 3)):
        for name, colour in COLOURS.items():
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                noisy = tuple(min(255, max(0, c + rng.randint(-60, 60))) for c in colour)
                Image.new("RGB", (32, 32), noisy).save(folder / f"img{i}.png")
    return root


def few_shot_recipe(root, **train):
    return tiny_recipe(
        data={"name": "imagefolder", "root": str(root), "shots": 2},
        adapter={"name": "linear-probe"},
        protocol={"name": "standard"},
        train={"epochs": 4, "batch_size": 4, "optimizer": "sgd", "lr": 0.05, "log_every": 1, **train},
    )


def saved_items(run_dir):
    return json.loads((run_dir / "few_shot.json").read_text())["items"]["train"]


def saved_positions(run_dir):
    return json.loads((run_dir / "few_shot.json").read_text())["indices"]["train"]


def test_few_shot_json_names_the_items_and_a_fresh_run_writes_the_recipe_first(tiny_plugin, tmp_path):
    root = colour_folder(tmp_path / "data")
    run_recipe(few_shot_recipe(root), tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "run" / "few_shot.json").read_text())
    assert saved["shots"] == 2 and saved["seed"] == 1 and len(saved["indices"]["train"]) == 4 * 2
    assert all(item.startswith(str(root / "train")) for item in saved["items"]["train"])


def test_a_build_that_fails_leaves_the_recipe_in_the_folder(tiny_plugin, tmp_path):
    recipe = tiny_recipe(data={"name": "imagefolder", "root": str(tmp_path / "missing"), "shots": 2})
    with pytest.raises(UserError):
        run_recipe(recipe, tmp_path / "out")
    assert (tmp_path / "out" / "run" / "recipe.yaml").is_file()
    assert (tmp_path / "out" / "run" / "resolved.yaml").is_file()


def test_eval_load_run_and_resume_stop_naming_a_sampled_file_that_is_gone(tiny_plugin, tmp_path):
    from mmadapt import load_run
    from mmadapt.runner import evaluate_run, resume_run

    root = colour_folder(tmp_path / "data")
    run_recipe(few_shot_recipe(root), tmp_path / "out")
    run_dir = tmp_path / "out" / "run"
    gone = saved_items(run_dir)[3]
    Path(gone).unlink()
    for rebuild in (lambda: evaluate_run(run_dir), lambda: load_run(run_dir), lambda: resume_run(run_dir)):
        with pytest.raises(UserError, match="no longer in the dataset") as error:
            rebuild()
        assert gone in str(error.value) and "few_shot.json" in str(error.value)


def test_a_run_folder_with_positions_only_reloads_on_them(tiny_plugin, tmp_path):
    from mmadapt import load_run
    from mmadapt.runner import evaluate_run

    run_recipe(few_shot_recipe(colour_folder(tmp_path / "data")), tmp_path / "out")
    run_dir = tmp_path / "out" / "run"
    saved = json.loads((run_dir / "few_shot.json").read_text())
    (run_dir / "few_shot.json").write_text(json.dumps({key: saved[key] for key in ("shots", "seed", "indices")}))
    assert load_run(run_dir).checkpoint is not None
    evaluate_run(run_dir)
    evaluated = json.loads(next((run_dir / "evals").glob("*/few_shot.json")).read_text())
    assert evaluated["indices"] == saved["indices"]


def test_eval_on_other_data_samples_that_data_afresh(tiny_plugin, tmp_path):
    from mmadapt.runner import evaluate_run

    run_recipe(few_shot_recipe(colour_folder(tmp_path / "data")), tmp_path / "out")
    other = colour_folder(tmp_path / "other", seed=3)
    metrics = evaluate_run(tmp_path / "out" / "run", [f"data.root={other}"])
    assert 0.0 <= metrics["test/accuracy"] <= 100.0


@pytest.mark.slow
def test_a_killed_few_shot_run_resumes_on_its_items_after_the_folder_gained_an_image(env_dir, tmp_path):
    from PIL import Image

    recipe_file = tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.create(few_shot_recipe(colour_folder(tmp_path / "data"))), recipe_file)
    full = run_adapt(["run", str(recipe_file), "--output-dir", str(tmp_path / "full")], path=env_dir)
    assert full.returncode == 0, full.stderr

    # 4 classes x 2 shots in batches of 4: 2 steps an epoch; step 5 is inside the third epoch.
    killed = run_adapt(["run", str(recipe_file), "--output-dir", str(tmp_path / "killed")], path=env_dir,
                       env={"KILL_AT_STEP": "5"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    before, positions = saved_items(tmp_path / "killed"), saved_positions(tmp_path / "killed")
    # A new first image of the first class (classes sort: blue first) moves every image one place on.
    Image.new("RGB", (32, 32), (128, 128, 128)).save(tmp_path / "data" / "train" / "blue" / "aaa.png")

    resumed = run_adapt(["run", "--resume", str(tmp_path / "killed")], path=env_dir)
    assert resumed.returncode == 0, resumed.stderr
    assert saved_items(tmp_path / "killed") == before
    assert saved_positions(tmp_path / "killed") == [i + 1 for i in positions]  # the same files, one place on
    full_summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    resumed_summary = json.loads((tmp_path / "killed" / "summary.json").read_text())
    for key in ("metrics", "steps", "params"):
        assert resumed_summary[key] == full_summary[key], key
