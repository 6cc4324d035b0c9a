"""Figures of run directories: training curves of one run, and a bar chart comparing runs.

Both need matplotlib (``pip install 'mmadapt[plots]'``). ``adapt run`` draws ``curves.png`` when
matplotlib is installed and the run trained; ``adapt compare --plot`` draws the comparison.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import UserError
from .rundir import SUMMARY, atomic_write

CURVES = "curves.png"


def matplotlib_available() -> bool:
    """Whether figures can be drawn here."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


FORMATS = ("png", "pdf", "svg")


class MatplotlibMissing(UserError):
    """A figure was asked for without matplotlib installed."""


def _figure(**options: Any) -> Any:
    # A bare Figure, not pyplot: no backend switch and no global figure list, so drawing here never
    # disturbs a notebook's or script's own plotting.
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise MatplotlibMissing("figures need matplotlib: pip install 'mmadapt[plots]'") from error
    return Figure(layout="constrained", **options)


def _save(figure: Any, path: Path) -> Path:
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise UserError(f"{path}: figures are written as {', '.join('.' + f for f in FORMATS)}; "
                        "choose a file name with one of these suffixes")
    atomic_write(path, lambda tmp: figure.savefig(tmp, format=fmt, dpi=110))
    return path


def _read_log(run_dir: Path) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl``; a line cut short by a crash is skipped."""
    path = run_dir / "metrics.jsonl"
    records = []
    for line in path.read_text(encoding="utf-8").splitlines() if path.is_file() else []:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def _training_steps(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Step records in step order, one per (stage, step): a resumed run logs the steps between its
    last checkpoint and the crash again, and the later record is the one the run continued from."""
    latest = {(r.get("stage", "train"), r["step"]): r for r in records if "loss" in r and "step" in r}
    return sorted(latest.values(), key=lambda r: r["step"])


def _smoothed(values: list[float], window: int) -> list[float]:
    """Trailing mean over ``window`` points, so single-batch noise does not hide the trend."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def write_training_curves(run_dir: str | Path) -> Path | None:
    """Draw loss and learning rate against the step into ``RUN_DIR/curves.png``.

    Returns the path, or None when the run logged no training step (zero-shot runs, or fewer steps
    than ``train.log_every``).
    """
    run_dir = Path(run_dir)
    steps = _training_steps(_read_log(run_dir))
    if not steps:
        return None
    figure = _figure(figsize=(10, 3.8))
    loss_axis, lr_axis = figure.subplots(1, 2)
    stages = list(dict.fromkeys(r.get("stage", "train") for r in steps))
    for stage in stages:
        rows = [r for r in steps if r.get("stage", "train") == stage]
        prefix = f"{stage} " if len(stages) > 1 else ""
        x, loss = [r["step"] for r in rows], [r["loss"] for r in rows]
        line, = loss_axis.plot(x, loss, alpha=0.3, linewidth=1)
        loss_axis.plot(x, _smoothed(loss, max(1, len(loss) // 20)), color=line.get_color(), label=stage)
        for key in sorted({k for r in rows for k in r if k.startswith("lr/")}):
            lr_axis.plot([r["step"] for r in rows if key in r], [r[key] for r in rows if key in r],
                         label=f"{prefix}{key[3:]}")
    loss_axis.set(xlabel="step", ylabel="loss", title="training loss (faint: logged values)")
    lr_axis.set(xlabel="step", ylabel="learning rate", title="learning rate per parameter group")
    for axis in (loss_axis, lr_axis):
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    summary = run_dir / SUMMARY
    if summary.is_file():
        meta = json.loads(summary.read_text(encoding="utf-8"))
        figure.suptitle(f"{meta.get('name', run_dir.name)}, seed {meta.get('seed')}")
    return _save(figure, run_dir / CURVES)


def draw_training_curves(run_dir: str | Path) -> None:
    """``curves.png`` when the run trained and matplotlib is installed. The figure is a convenience: a
    failure to draw it is reported on stderr and never fails the finished run."""
    try:
        write_training_curves(run_dir)  # imports matplotlib only when there are steps to draw
    except MatplotlibMissing:
        return
    except Exception as error:  # any drawing problem (fonts, disk) must not lose the finished run
        print(f"warning: {Path(run_dir) / CURVES} not drawn: {type(error).__name__}: {error}", file=sys.stderr)


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    """The ``summary.json`` of a run directory, or a clear error naming the directory."""
    path = Path(run_dir) / SUMMARY
    if not path.is_file():
        raise UserError(f"{run_dir}: no {SUMMARY}; pass a finished run directory (see `adapt runs`)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise UserError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(summary, dict) or not isinstance(summary.get("metrics"), dict):
        raise UserError(f"{path}: has no \"metrics\" mapping; is it a run's summary?")
    return summary


def comparison_rows(run_dirs: Sequence[str | Path], metrics: Sequence[str] | None = None,
                    labels: Sequence[str] | None = None
                    ) -> tuple[list[str], list[tuple[str, dict[str, tuple[float, float | None]]]]]:
    """(metric keys, [(label, {key: (mean, std or None)})]) for the runs.

    The keys are ``metrics``, or every metric the first run reports. A run that lacks a key shows
    no value for it; a key no run reports is an error. Labels default to "recipe name (folder)".
    """
    if labels is not None and len(labels) != len(run_dirs):
        raise UserError(f"--labels gives {len(labels)} label(s) for {len(run_dirs)} run(s); give one per run")
    summaries = [(Path(d), load_summary(d)) for d in run_dirs]
    keys = list(metrics) if metrics else list(summaries[0][1]["metrics"])
    missing = [k for k in keys if not any(k in s["metrics"] for _, s in summaries)]
    if missing:
        known = sorted({k for _, s in summaries for k in s["metrics"]})
        raise UserError(f"no run reports {', '.join(missing)}; the runs report: {', '.join(known)}")
    rows = []
    for i, (path, summary) in enumerate(summaries):
        std = summary.get("std", {})
        values = {k: (summary["metrics"][k], std.get(k)) for k in keys if k in summary["metrics"]}
        rows.append((labels[i] if labels else f"{summary.get('name', path.name)} ({path.name})", values))
    return keys, rows


def format_comparison(keys: Sequence[str], rows: Sequence[tuple[str, dict[str, tuple[float, float | None]]]]
                      ) -> str:
    """A plain-text table: one row per run, one column per metric (mean ± std over seeds)."""
    def cell(value: tuple[float, float | None] | None) -> str:
        if value is None:
            return "-"
        mean, std = value
        return f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "")

    table = [["run", *keys]] + [[label, *(cell(values.get(k)) for k in keys)] for label, values in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table)


def write_comparison(keys: Sequence[str], rows: Sequence[tuple[str, dict[str, tuple[float, float | None]]]],
                     out: str | Path) -> Path:
    """Grouped bars, one group per metric and one bar per run, with ± std error bars."""
    figure = _figure(figsize=(max(5.0, 1.2 + len(keys) * (0.5 + 0.45 * len(rows))), 3.8))
    axis = figure.subplots()
    width = 0.8 / len(rows)
    for i, (label, values) in enumerate(rows):
        xs = [k + (i - (len(rows) - 1) / 2) * width for k, key in enumerate(keys) if key in values]
        means = [values[key][0] for key in keys if key in values]
        errors = [values[key][1] or 0.0 for key in keys if key in values]
        bars = axis.bar(xs, means, width, yerr=errors, capsize=3, label=label)
        axis.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    axis.set_xticks(range(len(keys)), keys)
    finite = [v[0] for _, values in rows for v in values.values() if math.isfinite(v[0])]
    if finite and min(finite) >= 0 and max(finite) <= 100:
        axis.set_ylim(0, 105)
    axis.grid(axis="y", alpha=0.3)
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _save(figure, Path(out))
