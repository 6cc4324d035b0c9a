"""The run directory: recipe files, env.json, metrics.jsonl, checkpoints and summary.json."""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

SUMMARY = "summary.json"
#: In the parent folder of a ``--seeds`` run: the seeds and the recipe as given, for ``--resume``.
SEEDS = "seeds.json"
CHECKPOINTS = "checkpoints"


class RunDir:
    """Paths and writers of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, name: str, output_dir: str | Path | None = None, root: str | Path = "runs") -> RunDir:
        """A fresh directory: ``output_dir`` as given, or ``runs/<name>/<timestamp>``."""
        if output_dir is None:
            output_dir = Path(root) / name / shared_timestamp("%Y%m%d-%H%M%S-%f")
        path = Path(output_dir)
        path.mkdir(parents=True, exist_ok=True)
        return cls(path)

    @property
    def checkpoints(self) -> Path:
        """The checkpoint folder."""
        return self.path / CHECKPOINTS

    def write_recipe(self, given: DictConfig, resolved: DictConfig) -> None:
        """``recipe.yaml`` (as given, with overrides) and ``resolved.yaml`` (every default filled in)."""
        atomic_write_text(self.path / "recipe.yaml", OmegaConf.to_yaml(given))
        atomic_write_text(self.path / "resolved.yaml", OmegaConf.to_yaml(resolved))

    def write_env(self, plugins: list[dict[str, Any]]) -> None:
        """``env.json``: versions of Python, torch, open_clip, the core and every plugin (a local plugin's source)."""
        env = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "packages": {name: _version(name) for name in ("mmadapt", "torch", "open_clip_torch", "timm", "peft",
                                                          "accelerate")},
            # A plugin loaded with `adapt -p` also records where it came from.
            "plugins": {p["name"]: {"distribution": p["distribution"], "version": p["version"],
                                    **({"local": p["local"]} if p.get("local") else {})} for p in plugins},
        }
        atomic_write_text(self.path / "env.json", json.dumps(env, indent=2))

    def log(self, record: dict[str, Any]) -> None:
        """Append one JSON object to ``metrics.jsonl``."""
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as stream:
            stream.write(json.dumps({"time": time.time(), **record}) + "\n")

    def write_json(self, name: str, payload: Any) -> None:
        """Write ``name`` (JSON) atomically."""
        atomic_write_text(self.path / name, json.dumps(payload, indent=2))

    def write_figure(self, name: str, figure: Any) -> None:
        """Write a matplotlib ``Figure`` or a PIL image to ``name`` atomically; the format follows the suffix."""
        path = self.path / name
        fmt = path.suffix.lstrip(".").lower() or "png"
        if hasattr(figure, "savefig"):
            atomic_write(path, lambda tmp: figure.savefig(tmp, format=fmt, dpi=110))
        else:
            atomic_write(path, lambda tmp: figure.save(tmp, format={"jpg": "jpeg"}.get(fmt, fmt).upper()))

    def read_json(self, name: str) -> Any:
        """Read a JSON file of the run."""
        return json.loads((self.path / name).read_text(encoding="utf-8"))


def shared_timestamp(fmt: str) -> str:
    """The main process's current time in ``fmt``, the same in every process of a data-parallel run,
    so that all processes name the same run folder."""
    from .processes import process_state

    stamp = datetime.now().strftime(fmt)
    if process_state().num_processes > 1:
        from accelerate.utils import broadcast_object_list

        stamp = broadcast_object_list([stamp], from_process=0)[0]
    return stamp


def atomic_write_text(path: Path, text: str) -> None:
    """Write through a temporary file and ``os.replace`` so a crash never leaves half a file."""
    atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (os.umask can only swap it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then move the result to ``path`` atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_dir(path: Path, write: Callable[[Path], None]) -> None:
    """Fill a temporary sibling folder with ``write(tmp_dir)`` and rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes the folder private (0700), unlike mkdir
        write(tmp)
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def list_runs(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    """Every run below ``root`` that has a summary, newest first."""
    found = []
    for summary_path in root.rglob(SUMMARY) if root.is_dir() else []:
        try:
            found.append((summary_path.parent, json.loads(summary_path.read_text(encoding="utf-8"))))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(found, key=lambda item: item[0].stat().st_mtime, reverse=True)


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
