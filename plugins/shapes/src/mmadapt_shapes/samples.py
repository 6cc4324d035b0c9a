"""Sample image grids of each ShapesWorld task (``adapt shapes samples OUT_DIR``)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .pairs import pair_batch
from .tasks import PRETRAIN_STREAM, TASKS, get_task
from .world import image_grid


def task_grid(name: str, n: int = 64, columns: int = 8, seed: int = 0) -> Image.Image:
    """A grid of ``n`` training images of task ``name``; pairs are shown side by side."""
    task = get_task(name)
    images = []
    for i in range(n // 2 if task.paired else n):
        item = task.item(i, "train", seed)
        images.extend(item.image if task.paired else [item.image])
    return Image.fromarray(image_grid(images, columns))


def pretrain_grid(n: int = 64, columns: int = 8, seed: int = 0) -> Image.Image:
    """A grid of ``n`` pretraining images."""
    images, _ = pair_batch(seed, PRETRAIN_STREAM, 0, n)
    return Image.fromarray(image_grid(list(images), columns))


def _save(image: Image.Image, path: Path) -> None:
    # A 256-colour palette keeps the files small; the grain noise makes full-colour PNGs ~3x larger.
    image.quantize(256, dither=Image.Dither.NONE).save(path, optimize=True)


def save_sample_grids(out_dir: str | Path) -> list[Path]:
    """Write ``shapesworld-<task>.png`` for every task and ``shapesworld-pretrain.png``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    grids = {f"shapesworld-{name}.png": task_grid(name) for name in TASKS}
    grids["shapesworld-pretrain.png"] = pretrain_grid()
    for filename, image in grids.items():
        _save(image, out / filename)
    return [out / filename for filename in grids]
