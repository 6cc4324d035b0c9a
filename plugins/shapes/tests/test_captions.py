"""Captions name the shapes (and usually colour and lighting)."""

from mmadapt_shapes.captions import SHAPE_WORDS, caption, with_article
from mmadapt_shapes.world import item_rng, sample_scene


def _mentions_shape(text: str, shape: str) -> bool:
    return any(word in text for word in SHAPE_WORDS[shape])


def test_caption_names_every_shape():
    for i in range(300):
        rng = item_rng(0, 5, i)
        scene = sample_scene(rng, count=1 + i % 4)
        text = caption(scene, rng)
        assert all(_mentions_shape(text, s) for s in scene.shapes), text


def test_caption_usually_names_colour_when_well_lit():
    hits = 0
    for i in range(200):
        rng = item_rng(0, 6, i)
        scene = sample_scene(rng, lighting="well-lit")
        hits += scene.colour in caption(scene, rng)
    assert hits >= 120


def test_unusual_lighting_is_usually_mentioned():
    words = {"backlit": ("backlit", "silhouette", "from behind"), "low-light": ("dark", "dim", "low")}
    for lighting, keys in words.items():
        hits = 0
        for i in range(200):
            rng = item_rng(0, 7, i)
            text = caption(sample_scene(rng, lighting=lighting), rng)
            hits += any(k in text for k in keys)
        assert hits >= 100, lighting


def test_caption_is_deterministic_and_varied():
    scene = sample_scene(item_rng(0, 0, 0))
    assert caption(scene, item_rng(1, 0)) == caption(scene, item_rng(1, 0))
    assert len({caption(scene, item_rng(1, i)) for i in range(30)}) > 10


def test_canonical_name_comes_first():
    assert all(words[0] == shape for shape, words in SHAPE_WORDS.items())


def test_article():
    assert with_article("orange star") == "an orange star"
    assert with_article("red arrow") == "a red arrow"
