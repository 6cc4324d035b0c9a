"""The Protocol contract: what a run does with its data and adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .data import DataBundle
    from .engine import Run


class Protocol:
    """Drives one seed of a run. Subclasses override :meth:`run` and usually :meth:`evaluate`.

    ``prepare`` may reshape the data before the adapter is built (base-to-novel keeps the base
    classes, incremental protocols cut tasks); ``evaluate`` is the evaluation part alone, which
    ``adapt eval`` calls on a saved adapter.
    """

    def __init__(self, config: Any) -> None:
        self.config = config

    def prepare(self, bundle: DataBundle) -> DataBundle:
        """Return the data the adapter is built for; the default keeps it as it is."""
        return bundle

    def run(self, run: Run) -> dict[str, float]:
        """Train and/or evaluate; return the headline metrics (``"<split>/<metric>": value``)."""
        return self.evaluate(run)

    def evaluate(self, run: Run) -> dict[str, float]:
        """Evaluate the adapter as it is now."""
        raise NotImplementedError
