"""The ``shapes`` dataset: ShapesWorld tasks as mmadapt splits, rendered on demand."""

from __future__ import annotations

from typing import Any

from mmadapt import DataBundle, Split
from mmadapt import Task as MmadaptTask
from PIL import Image

from .config import ShapesConfig
from .tasks import SPLITS, Task, get_task


class ShapesSplit(Split):
    """Items ``0 .. size-1`` of one split of a task; labels are known without rendering."""

    def __init__(self, task: Task, split: str, size: int, seed: int, image_size: int, on_bad_image: str):
        scenes = [task.scene(i, split, seed) for i in range(size)]
        labels = [[int(c) for c in label.nonzero()[0]] if task.multilabel else int(label) for _, label in scenes]
        super().__init__(labels, len(task.classnames), multi_label=task.multilabel, on_bad_image=on_bad_image)
        self.task, self.split, self.seed, self.image_size = task, split, seed, image_size

    def _load(self, i: int) -> dict[str, Any]:
        item = self.task.item(i, self.split, self.seed, self.image_size)
        if self.task.paired:
            backlit, well_lit = item.image
            return {"image": Image.fromarray(backlit), "target": Image.fromarray(well_lit)}
        return {"image": Image.fromarray(item.image)}


def build_bundle(config: ShapesConfig) -> DataBundle:
    """The task's ``train``, optional ``val`` and ``test`` splits."""
    task = get_task(config.task)
    sizes = {"train": config.train_size, "val": config.val_size, "test": config.test_size}
    splits = {
        name: ShapesSplit(task, name, sizes[name], config.seed, config.image_size, config.on_bad_image)
        for name in SPLITS
        if sizes[name] > 0
    }
    kind = "image-to-image" if task.paired else "multi-label" if task.multilabel else "single-label"
    return DataBundle(
        MmadaptTask(list(task.classnames), kind=kind, templates=list(task.templates),
                    knowledge=dict(task.knowledge), name=f"shapes/{task.name}"),
        splits,
    )
