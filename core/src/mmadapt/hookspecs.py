"""Every hook mmadapt calls, grouped by phase. Each docstring is the hook's reference documentation.

Registration hooks receive a ``register`` callback. The core calls each plugin's implementation
separately, so every component it registers is recorded with its plugin, distribution and version.
A factory (a command's handler, a benchmark's ``run``, their ``add_arguments``) is given by reference,
``"package.module:object"`` in entry-point syntax: the module is imported when the component is
first built, so registering imports nothing heavy. A callable is accepted too.

Lifecycle hooks observe a run. They must not change the run's numbers; use them for logging,
notifications or extra artefacts. An observer that raises is reported as a ``RuntimeWarning``
naming its plugin and hook, and the run goes on; ``MMADAPT_STRICT_PLUGINS=1`` lets the error
propagate instead.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("mmadapt")
hookimpl = pluggy.HookimplMarker("mmadapt")

# -- registration ---------------------------------------------------------------------------------


@hookspec
def register_backbones(register):
    """Register pretrained-model wrappers that fulfil the ``mmadapt.Backbone`` contract.

    Call ``register(name, factory, config, summary)`` once per backbone. ``factory(config)`` returns a
    ``Backbone``; ``config`` is the dataclass that validates the recipe's ``backbone:`` section.
    """


@hookspec
def register_adapters(register):
    """Register adapters: ``nn.Module`` s that own every trainable parameter of a method.

    Call ``register(name, factory, config, summary)``; ``factory(config, backbone, task)`` returns an
    ``mmadapt.Adapter``.
    """


@hookspec
def register_objectives(register):
    """Register objectives that turn ``(outputs, batch)`` into a scalar loss and named terms.

    Call ``register(name, factory, config, summary)``; ``factory(config, adapter)`` returns a callable
    ``objective(outputs, batch) -> (loss, {term: tensor})``.
    """


@hookspec
def register_datasets(register):
    """Register datasets that produce a task description and its splits.

    Call ``register(name, factory, config, summary)``; ``factory(config)`` returns an
    ``mmadapt.DataBundle``. ``config`` should subclass ``mmadapt.DataConfig`` so the shared keys
    (``shots``, ``on_bad_image``, ...) validate the same way for every dataset.
    """


@hookspec
def register_protocols(register):
    """Register protocols that drive a run (train then evaluate, base-to-novel, incremental tasks ...).

    Call ``register(name, factory, config, summary)``; ``factory(config)`` returns an
    ``mmadapt.Protocol``: ``prepare(bundle)`` reshapes the data before the adapter is built,
    ``run(run) -> dict[str, float]`` trains and evaluates and returns the headline metrics,
    ``evaluate(run)`` is the evaluation alone (what ``adapt eval`` calls). What it needs from an
    adapter beyond ``mmadapt.Adapter`` it declares in ``adapter_interface``, checked when the run is built.
    """


@hookspec
def register_metrics(register):
    """Register evaluation metrics.

    Call ``register(name, factory, config, summary)``; ``factory(config)`` returns an object with
    ``update(outputs, batch)`` and ``compute() -> dict[str, float]``. Its ``inputs`` attribute
    (default ``mmadapt.Metric.inputs``: ``{"outputs": ("logits",), "batch": ("label",)}``) names the
    per-sample tensors it reads; in multi-process runs those are gathered from every process.
    """


@hookspec
def register_commands(register):
    """Add subcommands to the ``adapt`` command line.

    Call ``register(name, handler, help, add_arguments=None)``: ``add_arguments(parser)`` fills an
    ``argparse`` parser; ``handler(args) -> int`` runs the command and returns its exit code. Every
    ``adapt`` call imports the module that ``add_arguments`` names, so keep that module cheap (heavy
    imports inside the handler).
    """


@hookspec
def register_benchmarks(register):
    """Add benchmarks to ``adapt bench``: speed of a step measured side by side with a baseline.

    Call ``register(name, run, summary, add_arguments=None)``. ``adapt bench`` lists every benchmark
    with its plugin and summary; ``adapt bench NAME [options]`` parses the options with a parser
    that ``add_arguments(parser)`` filled, then calls ``run(args) -> dict[str, float]``. ``run``
    times both sides in the one process, prints what it measured, and returns the ratios
    (``{"reference / ours": 8.6}``), which ``adapt bench`` prints as ``ratio reference / ours: 8.60x``.
    ``run``'s module is imported only when the benchmark runs.
    """


@hookspec
def register_recipes(register):
    """Ship recipe files with the plugin: ``adapt recipes`` lists them and ``adapt run NAME`` runs one.

    Call ``register(location)`` once per folder. ``location`` is a package name, whose ``recipes/``
    folder is meant (``register(__package__)`` in the plugin's ``plugin.py``; list the files as package
    data so wheels carry them), or a ``pathlib.Path`` to a folder. Every ``*.yaml`` file under it is a
    recipe named by its path inside the folder without the suffix: ``coop/dtd.yaml`` is ``coop/dtd``.
    """


# -- run lifecycle --------------------------------------------------------------------------------


@hookspec
def on_run_start(run):
    """Called on the main process once the run directory, backbone, data and adapter exist, before
    the protocol starts."""


@hookspec
def on_step_end(run, step, logs):
    """Called on the main process every ``train.log_every`` optimiser steps, with the step number
    (counted over all stages) and the logged values: ``loss``, the objective's terms and
    ``lr/<group>`` per parameter group."""


@hookspec
def on_eval_end(run, split, metrics):
    """Called on the main process after each evaluation, with the evaluation's prefix (the split
    name unless the protocol gave another, e.g. ``base`` and ``new``) and its metrics keyed
    ``"<prefix>/<metric>"``."""


@hookspec
def on_run_end(run, summary):
    """Called on the main process after ``summary.json`` is written, with the summary dictionary."""
