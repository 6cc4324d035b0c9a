"""The record of unreadable images a run skipped: each file counted once, however often it is met."""

from __future__ import annotations

from typing import Any


class SkippedImages:
    """Names of the unreadable items met so far, and drops of items that have no name.

    A batch reports its drops (:meth:`note`); :meth:`merge` unites the record of every process
    (collective) and can be repeated without counting anything twice.
    """

    def __init__(self) -> None:
        self._keys: set[str] = set()
        # Drops without a name: merged over the processes, and new in this process since the last merge.
        self._unnamed = 0
        self._unnamed_new = 0

    @property
    def count(self) -> int:
        """Unreadable items met so far: named ones once each, unnamed drops each time."""
        return len(self._keys) + self._unnamed + self._unnamed_new

    def note(self, batch: dict[str, Any]) -> None:
        """Take a batch's record of dropped items out of it and remember them."""
        keys = batch.pop("skipped_keys", [])
        self._keys.update(keys)
        # Items of a dataset whose __getitem__ returns None cannot be told apart; each drop counts.
        self._unnamed_new += int(batch.pop("skipped", 0)) - len(keys)

    def merge(self, num_processes: int) -> None:
        """Unite every process's record (collective when ``num_processes > 1``: every process calls it).

        Names are united (repeatable); unnamed drops since the last merge are summed once and cleared.
        """
        if num_processes > 1:
            from accelerate.utils import gather_object

            records = gather_object([(self._keys, self._unnamed_new)])
            self._keys = set().union(*(keys for keys, _ in records))
            self._unnamed += sum(new for _, new in records)
        else:
            self._unnamed += self._unnamed_new
        self._unnamed_new = 0

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps of the record (merge first, so it holds every process's)."""
        return {"skipped_images": self.count, "skipped_keys": sorted(self._keys), "skipped_unnamed": self._unnamed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """The record a checkpoint kept (older checkpoints hold only the count)."""
        self._keys = set(state.get("skipped_keys", []))
        self._unnamed = int(state.get("skipped_unnamed", state.get("skipped_images", 0)))
        self._unnamed_new = 0
