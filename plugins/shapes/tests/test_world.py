"""ShapesWorld generator: determinism, constraints, rendering."""

import numpy as np
import pytest
from mmadapt_shapes import world
from mmadapt_shapes.world import item_rng, render, sample_scene


def _image(seed: int, index: int, **kw) -> np.ndarray:
    return render(sample_scene(item_rng(seed, 0, index), **kw))


@pytest.mark.parametrize("count", [1, 2, 4])
def test_same_seed_gives_identical_bytes(count):
    for i in range(5):
        assert _image(7, i, count=count).tobytes() == _image(7, i, count=count).tobytes()


def test_items_are_independent_of_order():
    later = _image(3, 10)
    for i in range(10):
        _image(3, i)
    assert _image(3, 10).tobytes() == later.tobytes()


def test_different_index_or_seed_gives_different_image():
    assert not np.array_equal(_image(0, 0), _image(0, 1))
    assert not np.array_equal(_image(0, 0), _image(1, 0))


def test_render_format_and_size():
    scene = sample_scene(item_rng(0, 0, 0))
    img = render(scene)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert render(scene, size=96).shape == (96, 96, 3)


def test_vocabulary_sizes():
    assert len(world.SHAPES) >= 12 and len(set(world.SHAPES)) == len(world.SHAPES)
    assert len(world.COLOURS) >= 10
    assert set(world.SIZES) == {"small", "medium", "large"}
    assert {"left", "right", "top", "bottom", "centre"} <= set(world.POSITIONS)
    assert set(world.BACKGROUNDS) == {"plain", "gradient", "noise", "stripes"}
    assert set(world.TEXTURES) == {"solid", "striped", "dotted", "outline"}
    assert {"well-lit", "backlit", "low-light"} <= set(world.LIGHTINGS)


def test_constraints_are_respected():
    kw = dict(shape="star", colour="red", size="large", position="top left", texture="dotted",
              background="stripes", lighting="backlit")
    scene = sample_scene(item_rng(0, 0, 0), **kw)
    obj = scene.objects[0]
    assert (obj.shape, obj.colour, obj.size, obj.position, obj.texture) == (
        "star", "red", "large", "top left", "dotted")
    assert (scene.background, scene.lighting, scene.count) == ("stripes", "backlit", 1)


def test_unknown_attribute_is_rejected():
    with pytest.raises(ValueError, match="blob"):
        sample_scene(item_rng(0, 0, 0), shape="blob")
    with pytest.raises(ValueError):
        sample_scene(item_rng(0, 0, 0), count=5)


@pytest.mark.parametrize("count", [2, 3, 4])
def test_multi_object_scenes_have_distinct_shapes(count):
    for i in range(10):
        scene = sample_scene(item_rng(0, 0, i), count=count)
        assert scene.count == count and len(set(scene.shapes)) == count
        assert len({o.position for o in scene.objects}) == count


def test_every_shape_draws_a_distinct_visible_mask():
    masks = []
    for shape in world.SHAPES:
        scene = sample_scene(item_rng(0, 0, 0), shape=shape, colour="red", size="large", position="centre",
                             texture="solid", background="plain", lighting="well-lit")
        img = render(scene).astype(int)
        mask = np.abs(img - np.array(scene.bg_rgb[0])).sum(-1) > 60
        assert mask.sum() > 100, shape
        masks.append(mask)
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            assert (masks[i] != masks[j]).sum() > 20, (world.SHAPES[i], world.SHAPES[j])


def test_lighting_changes_brightness():
    base = sample_scene(item_rng(0, 0, 0), lighting="well-lit", size="small")
    means = {}
    for lighting in ("well-lit", "backlit", "low-light"):
        scene = world.Scene(base.objects, base.background, base.bg_rgb, base.bg_variant, lighting, base.grain)
        means[lighting] = render(scene).mean()
    assert means["backlit"] > means["well-lit"] > means["low-light"]


def test_image_grid_tiles_images():
    imgs = [np.full((4, 4, 3), i, dtype=np.uint8) for i in range(3)]
    grid = world.image_grid(imgs, columns=2, pad=1)
    assert grid.shape == (2 * 5 + 1, 2 * 5 + 1, 3)
    assert (grid[1:5, 6:10] == 1).all()


def test_background_brightness_differs_from_object():
    ok = 0
    for i in range(200):
        scene = sample_scene(item_rng(0, 9, i))
        bg, obj = (np.asarray(c, dtype=float) for c in (scene.bg_rgb[0], scene.objects[0].rgb))
        ok += abs(world._luma(bg) - world._luma(obj)) >= world._MIN_BG_LUMA
    assert ok >= 190


def test_objects_have_a_dark_contour_unless_backlit():
    kw = dict(shape="square", colour="yellow", size="large", position="centre", texture="solid",
              background="plain")
    scene = sample_scene(item_rng(0, 0, 0), lighting="well-lit", **kw)
    row = render(scene)[32].astype(int).sum(-1)
    # Walking from the centre outwards along the middle row: bright fill, dark contour, background.
    assert row[32] > 400 and row.min() < 150
    assert abs(int(row[2]) - sum(scene.bg_rgb[0])) < 40
