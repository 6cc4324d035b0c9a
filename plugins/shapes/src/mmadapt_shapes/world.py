"""ShapesWorld: a fast, deterministic generator of small synthetic scenes.

A :class:`Scene` holds every attribute needed to draw an image, so :func:`render` takes no random
generator and the same scene always gives byte-identical pixels. All randomness lives in
:func:`sample_scene`; datasets derive one generator per item with :func:`item_rng`, so item ``i`` of a
stream can be drawn without drawing items ``0..i-1``.

Geometry is stored in units of a 64-pixel canvas and scaled at render time. Shapes are drawn from
signed-distance fields (negative inside, in pixels) computed once per (shape, rotation, radius) and
cached; backgrounds and textures come from pattern banks built once per image size with a fixed seed.
Objects get a thin dark contour, clip-art style, except in silhouette (backlit). Rendering is
numpy-only and vectorised.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------

SHAPES: tuple[str, ...] = (
    "circle", "square", "triangle", "star", "heart", "cross",
    "diamond", "hexagon", "pentagon", "ring", "crescent", "arrow",
)

#: Named colours and their nominal RGB; each object gets a small random jitter around it.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 30, 35),
    "orange": (245, 135, 20),
    "yellow": (245, 220, 30),
    "green": (40, 170, 50),
    "cyan": (30, 210, 220),
    "blue": (35, 70, 215),
    "purple": (130, 45, 190),
    "pink": (250, 130, 190),
    "brown": (125, 75, 35),
    "white": (245, 245, 245),
}

SIZES: tuple[str, ...] = ("small", "medium", "large")
#: Radii (64-pixel canvas units) a size may take.
SIZE_RADII: dict[str, tuple[float, ...]] = {
    "small": (9.0, 10.0),
    "medium": (13.0, 14.0),
    "large": (18.0, 19.0),
}

#: Grid cells for single-object scenes, as (column, row) offsets in {-1, 0, 1}.
POSITIONS: dict[str, tuple[int, int]] = {
    "top left": (-1, -1), "top": (0, -1), "top right": (1, -1),
    "left": (-1, 0), "centre": (0, 0), "right": (1, 0),
    "bottom left": (-1, 1), "bottom": (0, 1), "bottom right": (1, 1),
}
#: Multi-object scenes place one object per quadrant so objects never overlap.
QUADRANTS: tuple[str, ...] = ("top left", "top right", "bottom left", "bottom right")

BACKGROUNDS: tuple[str, ...] = ("plain", "gradient", "noise", "stripes")
TEXTURES: tuple[str, ...] = ("solid", "striped", "dotted", "outline")
#: Sampling weights: plain backgrounds and solid fills are the most common, as in clip art.
BACKGROUND_WEIGHTS: tuple[float, ...] = (0.4, 0.2, 0.2, 0.2)
TEXTURE_WEIGHTS: tuple[float, ...] = (0.55, 0.15, 0.15, 0.15)
LIGHTINGS: tuple[str, ...] = ("well-lit", "backlit", "low-light")

#: Small in-plane rotations (degrees); kept small so a rotated square never becomes a diamond.
ROTATIONS: tuple[int, ...] = (-12, -6, 0, 6, 12)

CANVAS = 64  # the unit canvas that scene geometry is expressed in
_N_PATTERNS = 8  # variants per pattern bank
_MIN_BG_LUMA = 70.0  # least brightness difference between a background colour and any object colour


# --------------------------------------------------------------------------------------------------
# Scene description
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShapeObject:
    """One shape in a scene; geometry is in 64-pixel canvas units."""

    shape: str
    colour: str
    size: str
    position: str
    texture: str
    rgb: tuple[int, int, int]
    radius: float
    cx: int
    cy: int
    rotation: int
    pattern: int


@dataclass(frozen=True)
class Scene:
    """Everything needed to render one image."""

    objects: tuple[ShapeObject, ...]
    background: str
    bg_rgb: tuple[tuple[int, int, int], tuple[int, int, int]]
    bg_variant: int
    lighting: str
    grain: int = 0

    @property
    def count(self) -> int:
        """Number of objects."""
        return len(self.objects)

    @property
    def shape(self) -> str:
        """Shape of the first (for single-object scenes: the only) object."""
        return self.objects[0].shape

    @property
    def colour(self) -> str:
        """Colour of the first object."""
        return self.objects[0].colour

    @property
    def shapes(self) -> tuple[str, ...]:
        """Shapes of all objects, in drawing order."""
        return tuple(o.shape for o in self.objects)


def item_rng(seed: int, *keys: int) -> np.random.Generator:
    """Return the generator for one item of a stream, e.g. ``item_rng(seed, split_code, index)``."""
    return np.random.default_rng([int(seed), *(int(k) for k in keys)])


# --------------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------------


def _choice(rng: np.random.Generator, options: Iterable[str], given: str | None = None) -> str:
    """Return ``given`` when set (after validation), else a uniform pick from ``options``."""
    options = tuple(options)
    if given is not None:
        if given not in options:
            raise ValueError(f"{given!r} is not one of {options}")
        return given
    return options[int(rng.integers(len(options)))]


def _weighted(rng: np.random.Generator, options: tuple[str, ...], weights: tuple[float, ...],
              given: str | None = None) -> str:
    """Like :func:`_choice`, but draws with the given probabilities."""
    if given is not None:
        return _choice(rng, options, given)
    return options[int(rng.choice(len(options), p=weights))]


def _object(rng: np.random.Generator, shape: str, colour: str, size: str, position: str, texture: str,
            cx0: float, cy0: float) -> ShapeObject:
    base = np.asarray(COLOURS[colour])
    rgb = tuple(int(v) for v in np.clip(base + rng.integers(-14, 15, size=3), 0, 255))
    radius = SIZE_RADII[size][int(rng.integers(len(SIZE_RADII[size])))]
    jx, jy = rng.integers(-2, 3, size=2)
    return ShapeObject(
        shape=shape, colour=colour, size=size, position=position, texture=texture, rgb=rgb,
        radius=radius, cx=int(round(cx0 + jx)), cy=int(round(cy0 + jy)),
        rotation=ROTATIONS[int(rng.integers(len(ROTATIONS)))], pattern=int(rng.integers(_N_PATTERNS)),
    )


def _background_colour(rng: np.random.Generator, avoid: list[np.ndarray],
                       near: np.ndarray | None = None) -> tuple[int, int, int]:
    """A muted colour whose brightness differs clearly from every object's (when 64 tries allow),
    so objects stand out; with ``near``, a variation of that colour, so patterns stay subtle."""
    for _ in range(64):
        if near is None:
            rgb = np.clip(rng.uniform(35, 225) + rng.uniform(-40, 40, size=3), 0, 255)
        else:
            rgb = np.clip(near + rng.uniform(-40, 40, size=3), 0, 255)
        if all(abs(_luma(rgb) - _luma(a)) >= _MIN_BG_LUMA for a in avoid):
            break
    return tuple(int(v) for v in rgb)


def _luma(rgb: np.ndarray) -> float:
    """Perceived brightness (ITU-R BT.601 weights)."""
    return float(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])


def sample_scene(
    rng: np.random.Generator,
    *,
    shape: str | None = None,
    colour: str | None = None,
    size: str | None = None,
    position: str | None = None,
    texture: str | None = None,
    background: str | None = None,
    lighting: str | None = None,
    count: int | None = None,
    shapes: tuple[str, ...] | None = None,
    colours: tuple[str, ...] | None = None,
) -> Scene:
    """Draw a random scene; any keyword fixes that attribute.

    ``shape``/``colour``/``size``/``position``/``texture`` constrain single-object scenes (and the
    first object of a multi-object scene). ``count`` (1-4) sets the number of objects; ``shapes``
    and ``colours`` fix the objects of a multi-object scene in order. Objects of one scene always
    have distinct shapes; in multi-object scenes they are small or medium, one per quadrant.
    """
    if shapes is not None:
        count = len(shapes)
    if count is None:
        count = 1
    if not 1 <= count <= 4:
        raise ValueError(f"count must be 1-4, got {count}")
    lighting = _choice(rng, LIGHTINGS, lighting)
    background = _weighted(rng, BACKGROUNDS, BACKGROUND_WEIGHTS, background)

    objects: list[ShapeObject] = []
    if count == 1:
        sh = _choice(rng, SHAPES, shapes[0] if shapes else shape)
        col = _choice(rng, COLOURS, colours[0] if colours else colour)
        sz = _choice(rng, SIZES, size)
        pos = _choice(rng, POSITIONS, position)
        tex = _weighted(rng, TEXTURES, TEXTURE_WEIGHTS, texture)
        r = max(SIZE_RADII[sz])
        reach = min(17.0, CANVAS / 2 - 1.1 * r - 1)  # keep the shape inside the frame
        dx, dy = POSITIONS[pos]
        objects.append(_object(rng, sh, col, sz, pos, tex, 32 + dx * reach, 32 + dy * reach))
    else:
        if shapes is None:
            rest = [s for s in SHAPES if s != shape]
            picked = [rest[i] for i in rng.permutation(len(rest))[: count - (shape is not None)]]
            shapes = tuple(([shape] if shape is not None else []) + picked)
        if len(set(shapes)) != len(shapes):
            raise ValueError(f"shapes of one scene must be distinct: {shapes}")
        cells = [QUADRANTS[i] for i in rng.permutation(4)[:count]]
        for k, (sh, pos) in enumerate(zip(shapes, cells)):
            col = _choice(rng, COLOURS, colours[k] if colours else (colour if k == 0 else None))
            sz = _choice(rng, SIZES[:2], size if k == 0 and size != "large" else None)
            tex = _weighted(rng, TEXTURES, TEXTURE_WEIGHTS, texture if k == 0 else None)
            dx, dy = POSITIONS[pos]
            objects.append(_object(rng, _choice(rng, SHAPES, sh), col, sz, pos, tex,
                                   32 + 15 * dx, 32 + 15 * dy))

    avoid = [np.asarray(o.rgb, dtype=float) for o in objects]
    bg1 = _background_colour(rng, avoid)
    bg2 = _background_colour(rng, avoid, near=np.asarray(bg1, dtype=float))
    return Scene(
        objects=tuple(objects), background=background, bg_rgb=(bg1, bg2),
        bg_variant=int(rng.integers(_N_PATTERNS)), lighting=lighting,
        grain=int(rng.integers(_N_PATTERNS)),
    )


# --------------------------------------------------------------------------------------------------
# Signed-distance fields (pixels; negative inside)
# --------------------------------------------------------------------------------------------------


def _polygon_sdf(x: np.ndarray, y: np.ndarray, verts: np.ndarray) -> np.ndarray:
    """Exact signed distance to a closed polygon (any winding), vectorised over points."""
    vx, vy = verts[:, 0], verts[:, 1]
    d = (x - vx[0]) ** 2 + (y - vy[0]) ** 2
    sign = np.ones_like(x)
    n = len(verts)
    for i in range(n):
        j = i - 1
        ex, ey = vx[j] - vx[i], vy[j] - vy[i]
        wx, wy = x - vx[i], y - vy[i]
        t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        bx, by = wx - ex * t, wy - ey * t
        d = np.minimum(d, bx * bx + by * by)
        c1 = y >= vy[i]
        c2 = y < vy[j]
        c3 = ex * wy > ey * wx
        flip = (c1 & c2 & c3) | (~c1 & ~c2 & ~c3)
        sign = np.where(flip, -sign, sign)
    return sign * np.sqrt(d)


def _regular(n: int, radius: float, phase_deg: float) -> np.ndarray:
    a = np.deg2rad(phase_deg + 360.0 * np.arange(n) / n)
    return np.stack([radius * np.cos(a), radius * np.sin(a)], axis=1)


def _star(points: int, outer: float, inner: float) -> np.ndarray:
    a = np.deg2rad(-90.0 + 180.0 * np.arange(2 * points) / points)
    r = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def _heart(samples: int = 72) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, samples, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y], axis=1)
    pts -= (pts.max(0) + pts.min(0)) / 2
    return pts / np.abs(pts).max()


# Unit-radius outlines (image coordinates: y grows downwards, so "up" is negative y).
_POLYGONS: dict[str, np.ndarray] = {
    "square": np.array([[-0.8, -0.8], [0.8, -0.8], [0.8, 0.8], [-0.8, 0.8]]),
    "triangle": _regular(3, 1.15, -90.0) + [0.0, 0.25],
    "star": _star(5, 1.1, 0.45),
    "heart": _heart() * 1.0,
    "cross": np.array([
        [-0.3, -1.0], [0.3, -1.0], [0.3, -0.3], [1.0, -0.3], [1.0, 0.3], [0.3, 0.3],
        [0.3, 1.0], [-0.3, 1.0], [-0.3, 0.3], [-1.0, 0.3], [-1.0, -0.3], [-0.3, -0.3],
    ]),
    "diamond": np.array([[0.0, -1.05], [0.7, 0.0], [0.0, 1.05], [-0.7, 0.0]]),
    "hexagon": _regular(6, 1.0, 0.0),
    "pentagon": _regular(5, 1.0, -90.0) + [0.0, 0.1],
    "arrow": np.array([
        [-1.0, -0.22], [0.15, -0.22], [0.15, -0.65], [1.0, 0.0],
        [0.15, 0.65], [0.15, 0.22], [-1.0, 0.22],
    ]),
}


def _shape_sdf(shape: str, x: np.ndarray, y: np.ndarray, r: float) -> np.ndarray:
    """Signed distance in pixels for a shape of radius ``r`` centred at the origin."""
    if shape in _POLYGONS:
        return _polygon_sdf(x, y, _POLYGONS[shape] * r)
    dist = np.sqrt(x * x + y * y)
    if shape == "circle":
        return dist - 0.92 * r
    if shape == "ring":
        return np.abs(dist - 0.68 * r) - 0.3 * r
    if shape == "crescent":
        bite = np.sqrt((x - 0.45 * r) ** 2 + (y + 0.12 * r) ** 2) - 0.78 * r
        return np.maximum(dist - 0.95 * r, -bite)
    raise ValueError(f"unknown shape {shape!r}")


@functools.lru_cache(maxsize=4096)
def _sdf_crop(shape: str, rotation: int, radius_px: float) -> np.ndarray:
    """Cached SDF on a square pixel grid centred on the shape (side ``2*half+1``)."""
    half = int(np.ceil(1.25 * radius_px + 2))
    k = np.arange(-half, half + 1, dtype=np.float64)
    yy, xx = np.meshgrid(k, k, indexing="ij")
    th = np.deg2rad(rotation)
    # Rotate the sampling grid by -theta, which rotates the drawn shape by +theta.
    xr = xx * np.cos(th) + yy * np.sin(th)
    yr = -xx * np.sin(th) + yy * np.cos(th)
    sdf = _shape_sdf(shape, xr, yr, radius_px).astype(np.float32)
    sdf.setflags(write=False)
    return sdf


# --------------------------------------------------------------------------------------------------
# Pattern banks (fixed seed, one per image size)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Banks:
    gradient: np.ndarray  # (K, S, S, 1) in [0, 1]
    noise: np.ndarray  # (K, S, S, 1) in [0, 1]
    bg_stripes: np.ndarray  # (K, S, S, 1) in [0, 1]
    stripes: np.ndarray  # (K, S, S, 1) object stripes, in [0, 1]
    dots: np.ndarray  # (K, S, S, 1) object dots, in [0, 1]
    grain: np.ndarray  # (K, S, S, 1) zero-mean pixel noise, unit std


def _smoothstep01(v: np.ndarray, sharpness: float) -> np.ndarray:
    return np.clip((v - 0.5) * sharpness + 0.5, 0.0, 1.0)


@functools.lru_cache(maxsize=8)
def _banks(size: int) -> _Banks:
    s = size / CANVAS
    k = np.arange(size, dtype=np.float64)
    yy, xx = np.meshgrid(k, k, indexing="ij")
    rng = np.random.default_rng(12345)  # fixed: banks are part of the renderer, not of a scene
    angles = np.deg2rad(np.arange(_N_PATTERNS) * 180.0 / _N_PATTERNS)

    def waves(period: float, i: int) -> np.ndarray:
        a = angles[i] + 0.3 * (i % 2)
        phase = rng.uniform(0, 2 * np.pi)
        return 0.5 + 0.5 * np.cos(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / (period * s) + phase)

    grad, noise, bgs, stripes, dots, grain = [], [], [], [], [], []
    for i in range(_N_PATTERNS):
        a = rng.uniform(0, 2 * np.pi)
        g = (xx - size / 2) * np.cos(a) + (yy - size / 2) * np.sin(a)
        grad.append((g - g.min()) / (g.max() - g.min()))
        # Smooth value noise: a coarse random grid upsampled bilinearly, plus a finer octave.
        field = np.zeros((size, size))
        for cells, weight in ((5, 0.7), (11, 0.3)):
            coarse = rng.random((cells, cells))
            u = np.linspace(0, cells - 1, size)
            i0 = np.floor(u).astype(int).clip(0, cells - 2)
            f = u - i0
            rows = coarse[i0] * (1 - f)[:, None] + coarse[i0 + 1] * f[:, None]
            field += weight * (rows[:, i0] * (1 - f) + rows[:, i0 + 1] * f)
        noise.append((field - field.min()) / (field.max() - field.min()))
        bgs.append(_smoothstep01(waves(12.0 + (i % 3) * 2, i), 3.0))
        stripes.append(_smoothstep01(waves(5.0, i), 4.0))
        spacing = 6.0 * s
        ox, oy = rng.uniform(0, spacing, size=2)
        dx = (xx + ox) % spacing - spacing / 2
        dy = (yy + oy) % spacing - spacing / 2
        dots.append(np.clip(1.6 * s + 0.5 - np.sqrt(dx * dx + dy * dy), 0.0, 1.0))
        grain.append(rng.standard_normal((size, size)))

    def stack(items: list[np.ndarray]) -> np.ndarray:
        arr = np.stack(items).astype(np.float32)[..., None]
        arr.setflags(write=False)
        return arr

    return _Banks(stack(grad), stack(noise), stack(bgs), stack(stripes), stack(dots), stack(grain))


# --------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------

_BACKLIT_BG = 0.22  # fraction of the background colour kept when washed out by the light behind
_BACKLIT_SUBJECT = 0.16  # fraction of the subject colour visible in silhouette
_LOW_LIGHT = 0.38  # overall brightness in low light
_INK = 28.0  # contour grey level
_INK_WIDTH = 2.5  # contour width in 64-canvas pixels


def _background(scene: Scene, banks: _Banks, size: int) -> np.ndarray:
    c1 = np.asarray(scene.bg_rgb[0], dtype=np.float32)
    c2 = np.asarray(scene.bg_rgb[1], dtype=np.float32)
    v = scene.bg_variant
    if scene.background == "plain":
        return np.broadcast_to(c1, (size, size, 3)).copy()
    t = {"gradient": banks.gradient, "noise": banks.noise, "stripes": banks.bg_stripes}[scene.background][v]
    return c1 + (c2 - c1) * t


def _paste(canvas: np.ndarray, obj: ShapeObject, scene: Scene, banks: _Banks, size: int) -> None:
    """Alpha-composite one object onto ``canvas`` in place."""
    scale = size / CANVAS
    sdf = _sdf_crop(obj.shape, obj.rotation, round(obj.radius * scale * 4) / 4)
    half = sdf.shape[0] // 2
    cx, cy = int(round(obj.cx * scale)), int(round(obj.cy * scale))
    # Clip the crop to the canvas.
    y0, x0 = cy - half, cx - half
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(size, y0 + sdf.shape[0]), min(size, x0 + sdf.shape[1])
    if ys >= ye or xs >= xe:
        return
    d = sdf[ys - y0 : ye - y0, xs - x0 : xe - x0, None]
    region = (slice(ys, ye), slice(xs, xe))

    # 1-pixel linear ramp across the edge gives cheap anti-aliasing.
    ink = 0.0 if scene.lighting == "backlit" else _INK_WIDTH * scale
    alpha = _band(d + ink, 2.0 * scale) if obj.texture == "outline" else np.clip(0.5 - d, 0.0, 1.0)

    rgb = np.asarray(obj.rgb, dtype=np.float32)
    if obj.texture in ("striped", "dotted"):
        # Pattern in a lighter tint (darker for very light colours) keeps the hue readable.
        tint = rgb * 0.55 if rgb.mean() > 190 else rgb * 0.4 + 255 * 0.6
        bank = banks.stripes if obj.texture == "striped" else banks.dots
        t = bank[obj.pattern][region]
        colour = rgb + (tint - rgb) * t
    else:
        colour = rgb

    if scene.lighting == "backlit":
        # Dark silhouette with a thin bright rim where light wraps around the edge.
        rim = np.clip(1.0 - np.abs(d + 0.8 * scale) / (1.0 * scale), 0.0, 1.0)
        colour = colour * _BACKLIT_SUBJECT + 10.0
        colour = colour + (235.0 - colour) * 0.55 * rim

    target = canvas[region]
    target += (colour - target) * alpha
    if ink:
        # A thin dark contour, as in clip art: every object has the same edge polarity whatever
        # its colour and background, which makes shape much faster to learn.
        target += (_INK - target) * _band(d, ink)


def _band(d: np.ndarray, width: float) -> np.ndarray:
    """Anti-aliased coverage of the band ``-width <= d <= 0`` just inside an edge."""
    return np.clip(0.5 - (np.abs(d + width / 2) - width / 2), 0.0, 1.0)


def render(scene: Scene, size: int = 64) -> np.ndarray:
    """Draw ``scene`` as a ``size`` x ``size`` RGB image (``uint8``, HxWx3); deterministic."""
    banks = _banks(int(size))
    canvas = _background(scene, banks, size)
    if scene.lighting == "backlit":
        # Light from behind washes the background out towards white.
        canvas = 255.0 - (255.0 - canvas) * _BACKLIT_BG
    for obj in scene.objects:
        _paste(canvas, obj, scene, banks, size)
    if scene.lighting == "low-light":
        # Dim, slightly blue, with sensor noise.
        canvas = canvas * (_LOW_LIGHT * np.array([0.9, 0.95, 1.15], dtype=np.float32))
        canvas += 6.0 * banks.grain[scene.grain]
    else:
        canvas += 2.5 * banks.grain[scene.grain]
    return np.clip(canvas + 0.5, 0, 255).astype(np.uint8)


#: Rendering styles applied after drawing; pretraining uses only "normal".
STYLES: tuple[str, ...] = ("normal", "negative", "upside-down")


def stylise(image: np.ndarray, style: str) -> np.ndarray:
    """Apply a rendering ``style`` to a uint8 image: "normal" (unchanged), "negative" (inverted
    colours, like a photographic negative: shapes intact, colours and contrast polarity flipped) or
    "upside-down" (turned through 180 degrees, as by an upside-down camera: tips that point up in
    pretraining point down, and right-facing crescents and arrows face left)."""
    if style == "normal":
        return image
    if style == "negative":
        return 255 - image
    if style == "upside-down":
        return np.ascontiguousarray(image[::-1, ::-1])
    raise ValueError(f"unknown style {style!r}; expected one of {STYLES}")


def image_grid(images: list[np.ndarray], columns: int = 8, pad: int = 2) -> np.ndarray:
    """Tile equally sized HxWx3 images into one image with ``pad`` white pixels between them."""
    h, w, _ = images[0].shape
    rows = (len(images) + columns - 1) // columns
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad, 3), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        r, c = divmod(i, columns)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = img
    return grid
