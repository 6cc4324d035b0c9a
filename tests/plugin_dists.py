"""Make installable-looking plugin distributions (dist-info + module) in a temporary folder."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def make_plugin_dist(root: Path, dist: str, module: str, source: str, version: str = "0.3.1") -> None:
    """Write ``module.py`` and a ``dist-info`` whose ``mmadapt`` entry point names it."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    make_entry_point_dist(root, dist, module, module, version)


def make_entry_point_dist(root: Path, dist: str, name: str, target: str, version: str = "0.3.1") -> None:
    """Write a ``dist-info`` with one ``mmadapt`` entry point ``name = target``."""
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[mmadapt]\n{name} = {target}\n")


def run_adapt(args: list[str], path: Path | None = None, cwd: Path | None = None, env: dict | None = None,
              launcher: list[str] | None = None):
    """Run ``adapt`` (through ``launcher``, e.g. torchrun) in a subprocess with ``path`` first on PYTHONPATH."""
    full_env = dict(os.environ, **(env or {}))
    if path is not None:
        search = [str(path), str(Path(__file__).parent), full_env.get("PYTHONPATH", "")]
        full_env["PYTHONPATH"] = os.pathsep.join(search)
    command = [*(launcher or [sys.executable]), "-m", "mmadapt", *args]
    return subprocess.run(command, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=600)
