"""Stage checkpoints: one folder per (stage, epoch), written atomically, read only as data.

A folder ``checkpoints/<stage>-epochNNNN/`` holds ``adapter.safetensors`` (the adapter's trainable
tensors), ``state.pt`` (optimiser, scheduler, counters; loaded with ``weights_only=True``),
``protocol_state.safetensors`` + ``protocol_state.json`` (the protocol's :class:`RunState`) and
``checkpoint.json`` (stage, epoch, optimiser steps). Nothing is ever unpickled. A folder that
cannot be read is reported with its path and what to do; resuming falls back to the previous one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .errors import UserError
from .rundir import CHECKPOINTS, atomic_write_dir

WEIGHTS = "adapter.safetensors"
TRAINING_STATE = "state.pt"
STATE_TENSORS = "protocol_state.safetensors"
STATE_VALUES = "protocol_state.json"
META = "checkpoint.json"

_STAGE = re.compile(r"[\w.-]+")
_FOLDER = re.compile(r"^(?P<stage>[\w.-]+)-epoch(?P<epoch>\d+)$")


class CorruptCheckpointError(UserError):
    """A checkpoint file that is truncated, tampered with or not what mmadapt writes."""


def check_stage_name(stage: Any) -> str:
    """``stage`` if it can name checkpoint folders (letters, digits, ``_``, ``.``, ``-``); a ``UserError`` otherwise."""
    if not isinstance(stage, str) or not _STAGE.fullmatch(stage):
        raise UserError(
            f"stage name {stage!r} cannot name a checkpoint; use letters, digits, '_', '.' and '-' only "
            "(e.g. stage='warmup' or stage='round-2')"
        )
    return stage


class RunState(MutableMapping):
    """A protocol's own state: string keys, values that are tensors or JSON values.

    Saved with every stage checkpoint and restored before the protocol runs again on resume, so a
    resumed protocol sees what it had stored when the newest checkpoint was written. Tensors are
    saved with safetensors (moved to the CPU, contiguous); everything else must survive
    ``json.dumps`` unchanged.
    """

    def __init__(self) -> None:
        self._values: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str) or not key:
            raise TypeError(f"run.state keys are non-empty strings; got {key!r}")
        if not isinstance(value, torch.Tensor):
            try:
                same = json.loads(json.dumps(value)) == value
            except (TypeError, ValueError):
                same = False
            if not same:
                raise TypeError(
                    f"run.state[{key!r}] must be a tensor or a JSON value (numbers, strings, lists, dicts); "
                    f"got {type(value).__name__}"
                )
        self._values[key] = value

    def __delitem__(self, key: str) -> None:
        del self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"RunState({sorted(self._values)})"

    def split(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """``(tensors, json_values)`` as they are written to a checkpoint."""
        tensors = {k: v.detach().cpu().contiguous() for k, v in self._values.items() if isinstance(v, torch.Tensor)}
        values = {k: v for k, v in self._values.items() if not isinstance(v, torch.Tensor)}
        return tensors, values

    def replace_with(self, tensors: dict[str, torch.Tensor], values: dict[str, Any]) -> None:
        """Forget everything and hold ``tensors`` and ``values`` (what a checkpoint stored)."""
        self._values = {}
        for key, value in {**values, **tensors}.items():
            self[key] = value


@dataclass(frozen=True)
class Checkpoint:
    """One checkpoint folder and what its name and ``checkpoint.json`` say about it."""

    folder: Path
    stage: str
    epoch: int
    #: Optimiser steps of the run when it was written; -1 when unreadable (then it sorts first).
    steps: int

    def weights(self) -> dict[str, torch.Tensor]:
        """The adapter tensors, or a :class:`CorruptCheckpointError` naming the file."""
        from safetensors.torch import load_file

        path = self.folder / WEIGHTS
        try:
            return load_file(str(path))
        except Exception as exc:  # safetensors raises its own error types, OSError and ValueError
            raise self._corrupt(WEIGHTS, exc) from None

    def training_state(self) -> dict[str, Any]:
        """Optimiser, scheduler and counters, loaded as plain tensors and containers only."""
        path = self.folder / TRAINING_STATE
        try:
            return torch.load(path, weights_only=True, map_location="cpu")
        except Exception as exc:  # truncated zip, a pickle with code in it, a missing file
            raise self._corrupt(TRAINING_STATE, exc) from None

    def load_state_into(self, state: RunState) -> None:
        """Replace ``state`` with the protocol state stored here (empty in checkpoints without one)."""
        from safetensors.torch import load_file

        tensors: dict[str, torch.Tensor] = {}
        values: dict[str, Any] = {}
        try:
            if (self.folder / STATE_TENSORS).is_file():
                tensors = load_file(str(self.folder / STATE_TENSORS))
            if (self.folder / STATE_VALUES).is_file():
                values = json.loads((self.folder / STATE_VALUES).read_text())
        except Exception as exc:
            raise self._corrupt("protocol_state.*", exc) from None
        state.replace_with(tensors, values)

    def _corrupt(self, file: str, exc: BaseException) -> CorruptCheckpointError:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return CorruptCheckpointError(
            f"{self.folder / file}: cannot read this checkpoint ({reason[:200]}); it is truncated or was not "
            f"written by mmadapt. Delete the folder {self.folder} to use the previous checkpoint of the run "
            "(or start the run again if it has none)"
        )


def write_checkpoint(folder: Path, *, stage: str, epoch: int, steps: int, weights: dict[str, torch.Tensor],
                     training_state: dict[str, Any], state: RunState) -> None:
    """Write a checkpoint folder atomically: a reader sees all of it or none of it."""
    from safetensors.torch import save_file

    tensors, values = state.split()
    meta = {"stage": stage, "epoch": epoch, "steps": steps}

    def write(tmp: Path) -> None:
        save_file(weights, str(tmp / WEIGHTS), metadata={k: str(v) for k, v in meta.items()})
        torch.save(training_state, tmp / TRAINING_STATE)
        save_file(tensors, str(tmp / STATE_TENSORS))
        (tmp / STATE_VALUES).write_text(json.dumps(values))
        (tmp / META).write_text(json.dumps(meta))

    atomic_write_dir(folder, write)


def read_checkpoints(run_path: Path, stage: str | None = None) -> list[Checkpoint]:
    """The checkpoints of a run folder (of one ``stage``), oldest first: by epoch within a stage, else by steps."""
    folder = Path(run_path) / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _FOLDER.match(path.name)
        if match and path.is_dir() and (stage is None or match["stage"] == stage):
            found.append(Checkpoint(path, match["stage"], int(match["epoch"]), _steps_of(path)))
    if stage is not None:
        return sorted(found, key=lambda c: c.epoch)
    return sorted(found, key=lambda c: (c.steps, c.epoch))


def _steps_of(folder: Path) -> int:
    """Optimiser steps recorded in ``checkpoint.json`` (or, in older checkpoints, the weights' metadata)."""
    try:
        if (folder / META).is_file():
            return int(json.loads((folder / META).read_text())["steps"])
        from safetensors import safe_open

        with safe_open(str(folder / WEIGHTS), framework="pt") as weights:
            return int((weights.metadata() or {}).get("steps", -1))
    except Exception:  # unreadable: sorts first, and loading it reports the file
        return -1


def final_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint folder ``adapt eval`` loads from a run directory: the one with the most optimiser steps.

    ``None`` when the run wrote no checkpoint (zero-shot runs). The folder holds
    ``adapter.safetensors``; read it with ``safetensors.torch.load_file``.
    """
    found = read_checkpoints(Path(run_dir))
    return found[-1].folder if found else None


def prune_checkpoints(run_path: Path, stage: str, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints of ``stage``."""
    for old in read_checkpoints(run_path, stage)[:-keep]:
        for file in old.folder.iterdir():
            file.unlink()
        old.folder.rmdir()

