"""Task definitions: labels, splits, base/novel, pairs, knowledge."""

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
from mmadapt_shapes import COLOURS, SHAPES, TASKS, get_task, render


@pytest.mark.parametrize("name", TASKS)
def test_labels_are_in_range(name):
    task = get_task(name)
    for i in range(20):
        item = task.item(i, "train")
        if task.multilabel:
            assert item.label.shape == (len(task.classnames),) and 1 <= item.label.sum() <= 4
            assert {task.classnames[k] for k in np.flatnonzero(item.label)} == set(item.scene.shapes)
        else:
            assert 0 <= item.label < len(task.classnames)


@pytest.mark.parametrize("name", TASKS)
def test_items_are_deterministic_and_splits_differ(name):
    task = get_task(name)
    a, b = task.item(3, "val", seed=1), task.item(3, "val", seed=1)
    assert a.scene == b.scene
    assert task.item(3, "train", seed=1).scene != a.scene
    assert task.item(3, "test", seed=1).scene != a.scene


@pytest.mark.parametrize("name", TASKS)
def test_knowledge_and_templates_cover_every_class(name):
    task = get_task(name)
    assert set(task.knowledge) == set(task.classnames)
    assert all(task.knowledge[c] for c in task.classnames)
    assert task.templates and all("{}" in t for t in task.templates)


def test_single_label_items_match_their_class():
    shape = get_task("shape")
    for i in range(20):
        item = shape.item(i)
        assert item.scene.shape == shape.classnames[item.label] and item.scene.lighting == "well-lit"
    lighting = get_task("lighting")
    assert {lighting.item(i).scene.lighting for i in range(20)} == {"well-lit", "backlit"}


def test_colour_shape_base_novel_split():
    task = get_task("colour-shape")
    base, novel = set(task.base_classes), set(task.novel_classes)
    assert not base & novel
    assert base | novel == {f"{c} {s}" for c in COLOURS for s in SHAPES}
    assert len(base) == len(novel)
    half = len(task.classnames) // 2
    assert set(task.classnames[:half]) == base
    # Compositional: every colour and every shape occurs in both halves.
    for names in (base, novel):
        assert {n.split()[0] for n in names} == set(COLOURS)
        assert {n.split()[1] for n in names} == set(SHAPES)
    assert "red circle" in base  # the documented checkerboard: (colour 0, shape 0) is base


def test_class_restriction():
    task = get_task("colour-shape")
    novel = task.class_indices(task.novel_classes)
    for i in range(20):
        item = task.item(i, classes=novel)
        assert item.label in novel
        colour, shape = task.classnames[item.label].split()
        assert (item.scene.colour, item.scene.shape) == (colour, shape)


def test_backlit_pair_differs_only_in_lighting():
    task = get_task("backlit-pairs")
    for i in range(5):
        item = task.item(i)
        backlit, lit = item.image
        assert item.scene.lighting == "backlit"
        assert np.array_equal(backlit, render(item.scene))
        assert np.array_equal(lit, render(replace(item.scene, lighting="well-lit")))
        assert not np.array_equal(backlit, lit)
        assert backlit.mean() > lit.mean()


def test_aliases_and_unknown_task():
    assert get_task("colors-shapes").name == "colour-shape"
    with pytest.raises(KeyError, match="available"):
        get_task("nope")
    with pytest.raises(ValueError, match="split"):
        get_task("shape").item(0, "holdout")


def test_data_modules_do_not_import_torch():
    code = ("import sys, mmadapt_shapes, mmadapt_shapes.pairs, mmadapt_shapes.samples; "
            "assert 'torch' not in sys.modules and 'open_clip' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_negative_style_inverts_the_rendering():
    task = get_task("shape-negative")
    item = task.item(0)
    assert np.array_equal(item.image, 255 - render(item.scene))
    assert item.scene.shape == task.classnames[item.label]


def test_upside_down_style_turns_the_rendering_half_a_turn():
    task = get_task("shape-upside-down")
    item = task.item(0)
    plain = render(item.scene)
    assert np.array_equal(item.image, np.rot90(plain, 2))
    assert not np.array_equal(item.image, plain)
    assert item.image.flags["C_CONTIGUOUS"]
    assert item.scene.shape == task.classnames[item.label]


def test_shape_codenames_are_never_caption_words_and_their_descriptions_name_the_shape():
    from mmadapt_shapes.captions import SHAPE_WORDS

    task = get_task("shape-codenames")
    caption_words = {w for words in SHAPE_WORDS.values() for phrase in words for w in phrase.split()}
    assert not caption_words & set(task.classnames)
    for name, shape in zip(task.classnames, SHAPES):
        assert task.scene(0, classes=[task.classnames.index(name)])[0].shapes == (shape,)
        assert all(word in task.knowledge[name] for word in SHAPE_WORDS[shape])
