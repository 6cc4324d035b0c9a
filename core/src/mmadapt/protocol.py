"""The Protocol contract: what a run does with its data and adapter."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .data import DataBundle
    from .engine import Run
    from .recipe import Section


class Protocol:
    """Drives one seed of a run. Subclasses override :meth:`run` and usually :meth:`evaluate`.

    ``prepare`` may reshape the data before the adapter is built (base-to-novel keeps the base
    classes, incremental protocols cut tasks); ``evaluate`` is the evaluation part alone, which
    ``adapt eval`` calls on a saved adapter.
    """

    def __init__(self, config: Any) -> None:
        self.config = config

    def extra_datasets(self) -> dict[str, Section]:
        """Datasets this protocol uses besides the recipe's ``data:`` section, by a name of its own.

        The run prepares each as it prepares ``data:`` (knowledge file, few-shot items sampled with the
        run seed and saved in ``few_shot.json`` under that name, so a resumed or reloaded run gets the
        same ones) and passes them to :meth:`prepare` as ``extra``. The default is none.
        """
        return {}

    def prepare(self, bundle: DataBundle, extra: dict[str, DataBundle] | None = None) -> DataBundle:
        """Return the data the adapter is built for; the default keeps it as it is.

        ``extra`` holds the prepared :meth:`extra_datasets` by name; it is passed only to a protocol
        that names some, so ``prepare(self, bundle)`` serves every other protocol.
        """
        return bundle

    def run(self, run: Run) -> dict[str, float]:
        """Train and/or evaluate; return the headline metrics (``"<split>/<metric>": value``)."""
        return self.evaluate(run)

    def evaluate(self, run: Run) -> dict[str, float]:
        """Evaluate the adapter as it is now."""
        raise NotImplementedError
