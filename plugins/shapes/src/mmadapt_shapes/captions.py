"""Natural-language captions for ShapesWorld scenes.

Every caption names every object's shape (canonical name or a synonym). Other attributes are
mentioned at random, and some captions name the shape alone, so that contrastive pretraining cannot
match captions to images by colour alone. Lighting is mentioned in most backlit and low-light
captions so the lighting condition is learnable from text.
"""

from __future__ import annotations

import numpy as np

from .world import Scene, ShapeObject

#: Ways to name each shape; the first entry is the canonical class name.
SHAPE_WORDS: dict[str, tuple[str, ...]] = {
    "circle": ("circle", "disc", "round disc"),
    "square": ("square", "four-cornered square", "box shape"),
    "triangle": ("triangle", "three-sided shape", "triangular shape"),
    "star": ("star", "five-pointed star", "star shape"),
    "heart": ("heart", "heart shape", "love heart"),
    "cross": ("cross", "plus sign", "plus shape"),
    "diamond": ("diamond", "rhombus", "diamond shape"),
    "hexagon": ("hexagon", "six-sided polygon", "hexagonal shape"),
    "pentagon": ("pentagon", "five-sided polygon", "pentagonal shape"),
    "ring": ("ring", "donut shape", "annulus"),
    "crescent": ("crescent", "crescent moon", "moon shape"),
    "arrow": ("arrow", "right-pointing arrow", "arrow shape"),
}

SIZE_WORDS: dict[str, tuple[str, ...]] = {
    "small": ("small", "little", "tiny"),
    "medium": ("medium-sized", "mid-sized", "medium"),
    "large": ("large", "big", "huge"),
}

TEXTURE_WORDS: dict[str, tuple[str, ...]] = {
    "solid": ("solid", "plain", "filled"),
    "striped": ("striped", "stripy", "candy-striped"),
    "dotted": ("dotted", "polka-dot", "spotted"),
    "outline": ("outlined", "hollow", "outline"),
}

POSITION_PHRASES: dict[str, tuple[str, ...]] = {
    "top left": ("in the top left", "in the upper left corner", "at the top left"),
    "top": ("at the top", "near the top", "in the top middle"),
    "top right": ("in the top right", "in the upper right corner", "at the top right"),
    "left": ("on the left", "on the left side", "at the left"),
    "centre": ("in the centre", "in the middle", "at the centre"),
    "right": ("on the right", "on the right side", "at the right"),
    "bottom left": ("in the bottom left", "in the lower left corner", "at the bottom left"),
    "bottom": ("at the bottom", "near the bottom", "in the bottom middle"),
    "bottom right": ("in the bottom right", "in the lower right corner", "at the bottom right"),
}

BACKGROUND_PHRASES: dict[str, tuple[str, ...]] = {
    "plain": ("on a plain background", "on a flat background", "against a plain backdrop"),
    "gradient": ("on a gradient background", "against a smooth gradient", "on a shaded background"),
    "noise": ("on a noisy background", "against a mottled background", "on a cloudy background"),
    "stripes": ("on a striped background", "against wide stripes", "on a background of stripes"),
}

LIGHTING_PREFIXES: dict[str, tuple[str, ...]] = {
    "well-lit": ("a well-lit photo of ", "a bright photo of ", "a clearly lit image of "),
    "backlit": ("a backlit photo of ", "a backlit image of ", "a silhouette photo of "),
    "low-light": ("a dark photo of ", "a dimly lit photo of ", "a low-light photo of "),
}
LIGHTING_SUFFIXES: dict[str, tuple[str, ...]] = {
    "well-lit": (", well-lit", " in bright even light", ", clearly lit"),
    "backlit": (", backlit", " in silhouette against a bright background", ", lit from behind"),
    "low-light": (", dimly lit", " in low light", " in the dark"),
}
#: How often a caption mentions the lighting; unusual lighting is mentioned more often.
LIGHTING_MENTION = {"well-lit": 0.35, "backlit": 0.85, "low-light": 0.8}

PREFIXES = ("", "", "a photo of ", "an image of ", "a rendering of ", "a picture of ", "a drawing of ")
COUNT_WORDS = {2: "two", 3: "three", 4: "four"}


def with_article(phrase: str) -> str:
    """Prefix ``phrase`` with "a" or "an"."""
    return ("an " if phrase[:1] in "aeio" else "a ") + phrase


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def shape_word(shape: str, rng: np.random.Generator, canonical: float = 0.65) -> str:
    """The shape's class name with probability ``canonical``, otherwise a synonym."""
    words = SHAPE_WORDS[shape]
    return words[0] if rng.random() < canonical else _pick(rng, words[1:])


def _noun_phrase(obj: ShapeObject, lighting: str, rng: np.random.Generator) -> str:
    """E.g. "small red striped star" (no article)."""
    words = []
    if rng.random() < 0.4:
        words.append(_pick(rng, SIZE_WORDS[obj.size]))
    # Colour is hard to see in silhouette or in the dark, so captions mention it less there.
    if rng.random() < (0.85 if lighting == "well-lit" else 0.5):
        words.append(obj.colour)
    if rng.random() < (0.5 if obj.texture != "solid" else 0.1):
        words.append(_pick(rng, TEXTURE_WORDS[obj.texture]))
    words.append(shape_word(obj.shape, rng))
    return " ".join(words)


def _lighting_parts(scene: Scene, rng: np.random.Generator) -> tuple[str, str]:
    """(prefix, suffix) for the lighting; at most one is non-empty."""
    if rng.random() >= LIGHTING_MENTION[scene.lighting]:
        return _pick(rng, PREFIXES), ""
    if rng.random() < 0.5:
        return _pick(rng, LIGHTING_PREFIXES[scene.lighting]), ""
    return _pick(rng, PREFIXES), _pick(rng, LIGHTING_SUFFIXES[scene.lighting])


def _single(scene: Scene, rng: np.random.Generator) -> str:
    obj = scene.objects[0]
    u = rng.random()
    if u < 0.15:
        # Shape only: the one attribute that then tells images apart.
        word = shape_word(obj.shape, rng)
        return _pick(rng, ("{}", "this is {}", "the shape is {}", "a picture of {}")).format(
            with_article(word))
    if u < 0.25:
        word = shape_word(obj.shape, rng)
        return _pick(rng, ("{} coloured {}", "{} in {}", "{} that is {}")).format(
            with_article(word), obj.colour)
    prefix, light = _lighting_parts(scene, rng)
    tail = []
    if rng.random() < 0.35:
        tail.append(" " + _pick(rng, POSITION_PHRASES[obj.position]))
    if rng.random() < 0.35:
        tail.append(" " + _pick(rng, BACKGROUND_PHRASES[scene.background]))
    if len(tail) == 2 and rng.random() < 0.5:
        tail.reverse()
    body = with_article(_noun_phrase(obj, scene.lighting, rng))
    if rng.random() < 0.1 and not prefix:
        body = "there is " + body
    return prefix + body + "".join(tail) + light


def _multi(scene: Scene, rng: np.random.Generator) -> str:
    with_pos = rng.random() < 0.3
    parts = []
    for obj in scene.objects:
        np_ = with_article(_noun_phrase(obj, scene.lighting, rng))
        if with_pos:
            np_ += " " + _pick(rng, POSITION_PHRASES[obj.position])
        parts.append(np_)
    listing = ", ".join(parts[:-1]) + " and " + parts[-1]
    n = COUNT_WORDS[scene.count]
    prefix, light = _lighting_parts(scene, rng)
    if prefix:
        text = prefix + listing
    else:
        text = _pick(rng, (f"{n} shapes: {{}}", f"{n} objects: {{}}", "{}", "a scene with {}")).format(listing)
    if rng.random() < 0.25:
        text += " " + _pick(rng, BACKGROUND_PHRASES[scene.background])
    return text + light


def caption(scene: Scene, rng: np.random.Generator) -> str:
    """Return a random natural-language caption that names every object's shape."""
    return _single(scene, rng) if scene.count == 1 else _multi(scene, rng)
