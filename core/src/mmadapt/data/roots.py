"""Building datasets safely: paths kept inside the dataset root, labels in range, image files found by extension."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import UserError

#: File extensions (lower case) that image-folder datasets pick up; anything else is ignored.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


class DatasetRoot:
    """A dataset's root folder, handing out paths of entries and refusing any that escape it.

    An entry must be a relative path without ``..``, and must not resolve outside the root through a
    symbolic link. Resolved parent folders are cached, so checking a million entries of a few
    thousand folders costs about one ``lstat`` per entry.
    """

    def __init__(self, root: str | Path, key: str = "data.root") -> None:
        self.path = Path(root).expanduser()
        if not self.path.is_dir():
            raise UserError(f"{key}: dataset folder {root} not found; set {key} to the folder holding the images")
        self.real = Path(os.path.realpath(self.path))
        self._real_dirs: dict[Path, Path] = {}

    def resolve(self, entry: str | Path, where: str) -> Path:
        """The path of ``entry`` under the root; ``where`` (file and entry) names it in the error."""
        relative = Path(entry)
        if relative.is_absolute() or ".." in relative.parts:
            raise UserError(
                f"{where}: path {str(entry)!r} escapes the dataset root {self.path}; "
                "entries must be relative paths inside the root, without '..'"
            )
        path = self.path / relative
        real = self._real_dir(path.parent) / path.name
        if path.is_symlink():
            real = Path(os.path.realpath(path))
        if not real.is_relative_to(self.real):
            raise UserError(
                f"{where}: path {str(entry)!r} resolves to {real}, outside the dataset root {self.path} "
                "(through a symbolic link); copy the file into the root or link the whole dataset instead"
            )
        return path

    def _real_dir(self, folder: Path) -> Path:
        if folder not in self._real_dirs:
            self._real_dirs[folder] = Path(os.path.realpath(folder))
        return self._real_dirs[folder]


def check_label(label: Any, n_classes: int, where: str) -> int:
    """``label`` as a class id; a ``UserError`` naming ``where`` when it is not an int in range."""
    if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < n_classes:
        raise UserError(
            f"{where}: label {label!r} is out of range; labels must be integers 0..{n_classes - 1} "
            f"({n_classes} classes)"
        )
    return label


def list_images(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively, sorted, hidden files skipped), by extension."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [
            Path(dirpath) / name
            for name in sorted(filenames)
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS
        ]
    return found


def prompt_name(name: str) -> str:
    """A folder or file class name as prompts use it: underscores become spaces (CoOp)."""
    return name.replace("_", " ")
