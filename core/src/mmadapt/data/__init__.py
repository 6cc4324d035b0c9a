"""The data contract: a task description, its splits, and the helpers every dataset shares.

A dataset plugin's factory returns a :class:`DataBundle`: a :class:`Task` (class names, kind, prompt
templates, optional per-class knowledge) and named :class:`Split` s (``train``, optional ``val``,
``test``). A split knows every label without decoding an image, so few-shot sampling
(:func:`sample_few_shot`), base/new splits (:func:`split_base_new`) and class-incremental tasks
(:func:`select_classes`) are cheap views that never touch pixels.

Bad input follows DESIGN.md section 7: paths that escape the dataset root and labels out of range
fail when the dataset is built (:class:`DatasetRoot`, :func:`check_label`); unreadable images fail
or are skipped and counted when loaded (``data.on_bad_image``), and :func:`collate` carries the count
out of DataLoader worker processes.

The task kind decides what pixels a split gives (:func:`split_transforms`): classification splits
get the backbone's resize, crop and normalisation; image-to-image splits give RGB in [0, 1] at full
resolution, with the same geometry for every image of an item (:class:`PairedTransform`), and the
model normalises in its graph. A split may be unlabeled (every label ``None``): its items have no
``"label"``.

The modules follow these concerns: ``task`` (Task, DataBundle), ``splits``, ``collate``, ``images``
(decoding), ``transforms``, ``roots`` (dataset roots, labels, image files), ``few_shot`` and
``classes`` (class subsets). Import from ``mmadapt.data`` (or ``mmadapt``), not from the modules.
"""

from .classes import base_new_bundles, select_classes, split_base_new
from .collate import SKIPPED_KEY, collate
from .few_shot import VAL_MAX_SHOTS, apply_few_shot, apply_indices, sample_few_shot, sample_few_shot_splits
from .images import BAD_IMAGE_FIX, BadImageError, open_image, to_rgb
from .roots import IMAGE_EXTENSIONS, DatasetRoot, check_label, list_images, prompt_name
from .splits import FileSplit, Label, Split
from .task import TASK_KINDS, DataBundle, Task
from .transforms import AUGMENTS, PairedTransform, Transform, build_transforms, split_transforms

__all__ = [
    "AUGMENTS",
    "BAD_IMAGE_FIX",
    "IMAGE_EXTENSIONS",
    "SKIPPED_KEY",
    "TASK_KINDS",
    "VAL_MAX_SHOTS",
    "BadImageError",
    "DataBundle",
    "DatasetRoot",
    "FileSplit",
    "Label",
    "PairedTransform",
    "Split",
    "Task",
    "Transform",
    "apply_few_shot",
    "apply_indices",
    "base_new_bundles",
    "build_transforms",
    "check_label",
    "collate",
    "list_images",
    "open_image",
    "prompt_name",
    "sample_few_shot",
    "sample_few_shot_splits",
    "select_classes",
    "split_base_new",
    "split_transforms",
    "to_rgb",
]
