"""The figure of a class-incremental run: mAP (or accuracy) over the seen classes after each task."""

from __future__ import annotations

from typing import Any

from mmadapt import UserError


def map_per_task_figure(
    curves: dict[str, list[float]],
    title: str,
    spreads: dict[str, list[float]] | None = None,
    references: dict[str, float] | None = None,
    measure: str = "mAP",
) -> Any:
    """A matplotlib figure with one line per method (``measure``, mAP or accuracy, over the seen classes
    after task 1, 2, ...; optional ± spread bands).

    ``references`` are drawn as dashed horizontal lines (the joint upper bound).

    A ``UserError`` when matplotlib is missing.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise UserError("figures need matplotlib: pip install 'mmadapt[plots]'") from error
    figure = Figure(figsize=(5.5, 3.6), layout="constrained")
    axes = figure.add_subplot()
    for label, values in curves.items():
        steps = list(range(1, len(values) + 1))
        axes.plot(steps, values, marker="o", label=label)
        if spreads and label in spreads:
            low = [v - s for v, s in zip(values, spreads[label])]
            high = [v + s for v, s in zip(values, spreads[label])]
            axes.fill_between(steps, low, high, alpha=0.2)
    for label, value in (references or {}).items():
        axes.axhline(value, linestyle="--", color="grey", label=label)
    axes.set_xlabel("after task")
    axes.set_ylabel(f"{measure} over seen classes (%)")
    axes.set_xticks(list(range(1, max(len(v) for v in curves.values()) + 1)))
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    return figure
