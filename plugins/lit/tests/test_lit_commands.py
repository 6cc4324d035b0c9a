"""``adapt lit enhance`` and ``adapt lit residual-words``, and the bad input of lit runs: exit code 2, one message."""

from __future__ import annotations

import numpy as np
from lit_testing import shapes_recipe
from mmadapt.testing import adapt_command, run_recipe, tiny_recipe
from omegaconf import OmegaConf
from PIL import Image


def write_image(path, width, height, seed=0):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(path)
    return path


def listing(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_enhance_writes_one_png_per_image_at_its_size_and_nothing_else(rave_run, tmp_path, capsys):
    images = [write_image(tmp_path / "in" / "odd.png", 131, 97), write_image(tmp_path / "in" / "wide.jpg", 200, 40, 1)]
    before_run, before_tmp = listing(rave_run), listing(tmp_path)
    assert adapt_command(["lit", "enhance", str(rave_run), *map(str, images), "--out", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["odd.png", "wide.png"]
    assert Image.open(tmp_path / "out" / "odd.png").size == (131, 97)
    assert Image.open(tmp_path / "out" / "wide.png").size == (200, 40)
    assert listing(rave_run) == before_run
    assert [p for p in listing(tmp_path) if not p.startswith("out")] == before_tmp


def test_enhance_refuses_a_file_that_is_not_an_image_and_writes_nothing(rave_run, tmp_path, capsys):
    good = write_image(tmp_path / "good.png", 20, 20)
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    code = adapt_command(["lit", "enhance", str(rave_run), str(good), str(bad), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2 and "notes.png" in error and "cannot decode" in error
    assert error.count("error:") == 1 and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_enhance_refuses_a_run_that_is_not_an_enhancement_run(tiny_plugin, tmp_path, capsys):
    run_recipe(tiny_recipe(), tmp_path)
    image = write_image(tmp_path / "a.png", 16, 16)
    code = adapt_command(["lit", "enhance", str(tmp_path / "run"), str(image), "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert code == 2 and "not an enhancement adapter" in error and "zeroshot" in error
    assert not (tmp_path / "out").exists()


def test_residual_words_lists_the_nearest_and_farthest_tokens(rave_run, capsys):
    assert adapt_command(["lit", "residual-words", str(rave_run), "--top", "5"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("nearest") and lines[6].startswith("farthest") and len(lines) == 12
    cosines = [float(line.split()[1]) for line in lines[1:6]]
    assert cosines == sorted(cosines, reverse=True)


def run_on_folders(tmp_path, data, capsys):
    recipe = shapes_recipe({"name": "rave"}, {"name": "rave"}, data=data)
    path = tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.create(recipe), path)
    code = adapt_command(["run", str(path), "--output-dir", str(tmp_path / "run")])
    error = capsys.readouterr().err
    assert error.count("error:") == 1 and "Traceback" not in error
    return code, error


def test_an_unpaired_folder_with_an_empty_side_is_refused(tmp_path, capsys):
    root = tmp_path / "data"
    for split in ("train", "test"):
        write_image(root / split / "backlit" / "a.png", 16, 16)
        (root / split / "well-lit").mkdir(parents=True)
    code, error = run_on_folders(tmp_path, {"name": "unpaired-folders", "root": str(root)}, capsys)
    assert code == 2 and "'well-lit' folder has no images" in error


def test_an_unpaired_class_that_is_not_a_folder_is_refused_with_a_suggestion(tmp_path, capsys):
    root = tmp_path / "data"
    for name in ("backlit", "welllit"):
        write_image(root / "train" / name / "a.png", 16, 16)
    code, error = run_on_folders(tmp_path, {"name": "unpaired-folders", "root": str(root)}, capsys)
    assert code == 2 and "protocol.well_lit_class" in error and "did you mean 'welllit'" in error


def test_paired_folders_with_unmatched_names_are_refused(tmp_path, capsys):
    root = tmp_path / "data"
    write_image(root / "train" / "input" / "a.png", 16, 16)
    write_image(root / "train" / "target" / "b.png", 16, 16)
    code, error = run_on_folders(tmp_path, {"name": "paired-folders", "root": str(root)}, capsys)
    assert code == 2 and "without a partner" in error and "a.png" in error


def test_an_unknown_network_is_refused_naming_the_key(tmp_path, capsys):
    recipe = shapes_recipe({"name": "rave", "network": "clip-lit-nett"}, {"name": "rave"})
    path = tmp_path / "recipe.yaml"
    OmegaConf.save(OmegaConf.create(recipe), path)
    assert adapt_command(["run", str(path)]) == 2
    assert "adapter.network must be one of clip-lit-net" in capsys.readouterr().err


def test_a_training_folder_with_a_file_that_is_not_an_image_is_refused(tmp_path, capsys):
    root = tmp_path / "data"
    for name in ("a", "b"):
        write_image(root / "train" / "input" / f"{name}.png", 16, 16)
        write_image(root / "train" / "target" / f"{name}.png", 16, 16)
    (root / "train" / "input" / "a.png").write_text("not an image")
    code, error = run_on_folders(tmp_path, {"name": "paired-folders", "root": str(root)}, capsys)
    assert code == 2 and "a.png: cannot decode image" in error
