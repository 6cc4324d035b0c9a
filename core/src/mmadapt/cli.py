"""The ``adapt`` command line. Heavy imports (torch, open_clip) happen inside the handlers that need them."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from . import __version__
from .errors import PluginLoadError, UserError
from .plugins import PluginManager, get_plugin_manager, plugin_report, reset_plugin_manager
from .registry import Component
from .shipped_recipes import copy_recipe, resolve_recipe, shipped_recipes


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``adapt``; returns the exit code (2 for bad input, without a traceback)."""
    installed = None
    try:
        local, argv = split_local_plugins(sys.argv[1:] if argv is None else argv)
        manager = get_plugin_manager()
        if local:
            # A manager of its own: the local plugins join for this command and leave with it.
            installed, manager = manager, PluginManager().load()
            for source in local:
                manager.add_local_plugin(source)
            reset_plugin_manager(manager)
        parser = build_parser(manager)
        args, extra = parser.parse_known_args(argv)
        if getattr(args, "load_error", None) is not None:
            raise args.load_error
        _take_late_overrides(parser, args, extra)
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if installed is not None:
            reset_plugin_manager(installed)


def split_local_plugins(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """The ``-p``/``--plugin`` values given before the command, and the arguments after them.

    Only options before the command count, so a plugin command may have a ``-p`` of its own.
    """
    local: list[str] = []
    rest = list(argv)
    while rest:
        head = rest[0]
        if head in ("-p", "--plugin"):
            if len(rest) < 2:
                raise UserError(f"{head} needs a module name or a .py file")
            local.append(rest[1])
            del rest[:2]
        elif head.startswith("--plugin="):
            local.append(head.partition("=")[2])
            del rest[0]
        elif head.startswith("-p") and not head.startswith("--"):
            local.append(head[2:])
            del rest[0]
        else:
            break
    return local, rest


def build_parser(manager: PluginManager) -> argparse.ArgumentParser:
    """The argument parser with the core subcommands and every plugin's subcommands."""
    parser = argparse.ArgumentParser(
        prog="adapt", description="Adapt pretrained vision-language models with parameter-efficient methods."
    )
    parser.add_argument("--version", action="version", version=f"mmadapt {__version__}")
    # Read by split_local_plugins before the parser is built (their commands and components join it);
    # declared here for --help.
    parser.add_argument("-p", "--plugin", action="append", metavar="MODULE|FILE.py",
                        help="load a plugin that is not installed, for this command (a module on sys.path "
                             "or a .py file with hook implementations); may be repeated")
    parser.set_defaults(handler=lambda _args: parser.print_help() or 0)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = sub.add_parser("run", help="run a recipe (train and/or evaluate) into a run directory")
    _recipe_arguments(run)
    run.add_argument("--output-dir", help="run directory (default: runs/<name>/<timestamp>)")
    run.add_argument("--seeds", help="comma-separated seeds, e.g. 1,2,3; reports mean and std")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run from its last checkpoint")
    run.set_defaults(handler=_run)

    validate = sub.add_parser("validate", help="check a recipe without building anything")
    _recipe_arguments(validate)
    validate.set_defaults(handler=_validate)

    evaluate = sub.add_parser("eval", help="re-evaluate the adapter saved in a run directory")
    evaluate.add_argument("run_dir")
    evaluate.add_argument("overrides", nargs="*", help="recipe overrides, e.g. data.root=/other/data")
    evaluate.set_defaults(handler=_eval)

    export = sub.add_parser("export", help="write a finished run's adapter as a shareable folder (config, weights, "
                                           "model card)")
    export.add_argument("run_dir", metavar="RUN_DIR", help="a finished run (a --seeds run: its parent folder)")
    export.add_argument("--out", required=True, metavar="DIR", help="the folder to write")
    export.add_argument("--seed", type=int, help="of a --seeds run: the seed whose weights are exported "
                                                 "(default: the first)")
    export.add_argument("--merge", action="store_true",
                        help="also write the base model with the adapter folded in (LoRA, aTLAS, finetune) as plain "
                             "weights under DIR/merged")
    export.add_argument("--push", metavar="REPO", help="then upload DIR to this Hugging Face Hub repository (ORG/NAME)")
    export.set_defaults(handler=_export)

    predict = sub.add_parser("predict", help="print the top classes of images with an exported adapter")
    predict.add_argument("adapter", metavar="DIR", help="a folder written by `adapt export`, or hf-hub:ORG/NAME")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    predict.add_argument("--top-k", type=int, default=3, help="classes shown per image (default 3)")
    predict.set_defaults(handler=_predict)

    plugins = sub.add_parser("plugins", help="list installed plugins, their components and load errors")
    plugins.add_argument("--json", action="store_true", help="print JSON")
    plugins.set_defaults(handler=lambda args: _plugins(manager, args))

    recipes = sub.add_parser("recipes", help="list the recipes installed plugins ship (or those in a folder); copy one")
    recipes.add_argument("--dir", metavar="DIR", help="list the recipe files under DIR instead")
    recipes.set_defaults(handler=lambda args: _recipes(manager, args))
    recipes_sub = recipes.add_subparsers(title="subcommands", metavar="SUBCOMMAND")
    copy = recipes_sub.add_parser("copy", help="copy a shipped recipe to edit it")
    copy.add_argument("name", help="recipe name, as `adapt recipes` lists it")
    copy.add_argument("destination", nargs="?", default=".", help="a folder or a new .yaml file (default: here)")
    copy.set_defaults(handler=lambda args: _copy_recipe(manager, args))

    runs = sub.add_parser("runs", help="list run directories with their headline metrics")
    runs.add_argument("directory", nargs="?", default="runs")
    runs.set_defaults(handler=_runs)

    compare = sub.add_parser("compare", help="compare finished runs side by side (table, optional bar chart)")
    compare.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories (a --seeds run: its parent)")
    compare.add_argument("--metrics", help="comma-separated metric keys, e.g. base/accuracy,new/accuracy "
                                           "(default: every metric of the first run)")
    compare.add_argument("--labels", help="comma-separated names for the runs, in order; names cannot contain "
                                          "commas (default: 'recipe name (folder)')")
    compare.add_argument("--plot", metavar="FIG", help="also draw grouped bars with std error bars into this "
                                                       ".png, .pdf or .svg file")
    compare.set_defaults(handler=_compare)

    new_plugin = sub.add_parser("new-plugin", help="create a plugin package mmadapt-NAME, ready to pip install -e")
    new_plugin.add_argument("name", help="plugin name: lowercase letters, digits, hyphens (e.g. clip-adapter)")
    new_plugin.add_argument("--dir", default=".", help="where to create mmadapt-NAME/ (default: here)")
    new_plugin.set_defaults(handler=lambda args: _new_plugin(manager, args, set(sub.choices)))

    bench = sub.add_parser("bench", help="list benchmarks, or run one: speed side by side with a baseline")
    bench.add_argument("name", nargs="?", help="benchmark to run (without: list them)")
    bench.add_argument("options", nargs=argparse.REMAINDER, help="the benchmark's options (adapt bench NAME --help)")
    bench.set_defaults(handler=lambda args: _bench(manager, args))

    for command in manager.registry.all("command"):
        command_parser = sub.add_parser(command.name, help=command.summary)
        try:
            add_arguments = command.load_arguments()
        except PluginLoadError as error:
            # One plugin's broken command must not break `adapt`: the command itself reports the error.
            command_parser.set_defaults(load_error=error)
            continue
        if add_arguments is not None:
            add_arguments(command_parser)
        command_parser.set_defaults(handler=partial(_run_command, command))
    return parser


def _run_command(command: Component, args: argparse.Namespace) -> int:
    """A plugin's command: its handler is imported only when the command runs."""
    return command.load()(args)


def _take_late_overrides(parser: argparse.ArgumentParser, args: argparse.Namespace, extra: list[str]) -> None:
    """Overrides given after an option (``recipe.yaml --output-dir D train.lr=0.1``) join the others.

    argparse fills a ``nargs="*"`` positional once, before the options that follow it, so what comes
    after them arrives here; anything that is not ``key=value`` stays an error.
    """
    if not extra:
        return
    if hasattr(args, "overrides") and all("=" in item and not item.startswith("-") for item in extra):
        args.overrides = [*args.overrides, *extra]
        return
    parser.error(f"unrecognized arguments: {' '.join(extra)}")


def _recipe_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", nargs="?", help="recipe YAML file, or the name of a shipped recipe (`adapt recipes`)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.lr=0.01 adapter.n_ctx=8")


def _run(args: argparse.Namespace) -> int:
    from .runner import resume_run, run_recipe_file

    if args.resume:
        if args.recipe or args.seeds:
            raise UserError("--resume RUN_DIR continues a run with its own recipe; drop the recipe and --seeds")
        resume_run(args.resume)
        return 0
    if not args.recipe:
        raise UserError("adapt run needs a recipe file or name (see `adapt recipes`) or --resume RUN_DIR")
    seeds = _parse_seeds(args.seeds) if args.seeds else None
    path = resolve_recipe(args.recipe, get_plugin_manager())
    run_recipe_file(path, args.overrides, output_dir=args.output_dir, seeds=seeds)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .recipe import load_recipe

    if not args.recipe:
        raise UserError("adapt validate needs a recipe file or name")
    manager = get_plugin_manager()
    recipe = load_recipe(resolve_recipe(args.recipe, manager), args.overrides, registry=manager.registry)
    print(f"{args.recipe}: ok ({recipe.backbone.name} / {recipe.data.name} / {recipe.adapter.name} / "
          f"{recipe.protocol.name})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .runner import evaluate_run

    evaluate_run(args.run_dir, args.overrides)
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_run, push_export

    out = export_run(args.run_dir, args.out, merge=args.merge, seed=args.seed)
    print(f"wrote {out}/ (config.json, adapter.safetensors, README.md); "
          f"load it with mmadapt.load_adapter({str(out)!r})")
    merged = json.loads((out / "config.json").read_text()).get("merged")
    if merged:
        print(f"merged plain weights in {out / merged['folder']}/, loaded without mmadapt by:\n"
              + merged["load"].format(folder=out / merged["folder"]))
    if args.push:
        print(f"pushed to {push_export(out, args.push)}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .exported import load_adapter

    if args.top_k < 1:
        raise UserError(f"--top-k must be at least 1; got {args.top_k}")
    adapter = load_adapter(args.adapter)
    for image, classes in zip(args.images, adapter.top_classes(args.images, args.top_k)):
        print(f"{image}: " + ", ".join(f"{name} {score:.3f}" for name, score in classes))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .plots import comparison_rows, format_comparison, write_comparison

    metrics = _split_list(args.metrics)
    keys, rows = comparison_rows(args.run_dirs, metrics, _split_list(args.labels))
    print(format_comparison(keys, rows))
    if args.plot:
        print(f"wrote {write_comparison(keys, rows, args.plot)}")
    return 0


def _split_list(text: str | None) -> list[str] | None:
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _new_plugin(manager: PluginManager, args: argparse.Namespace, commands: set[str]) -> int:
    from .scaffold import create_plugin

    path = create_plugin(args.name, args.dir, registry=manager.registry, commands=commands)
    print(f"created {path}/\nnext:\n  cd {path}\n  pip install -e '.[test]'\n  pytest\n"
          f"  adapt run {path.name.removeprefix('mmadapt-')}-shapes   # needs mmadapt-shapes")
    return 0


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--seeds expects comma-separated integers like 1,2,3; got {text!r}") from None
    if not seeds:
        raise UserError("--seeds needs at least one seed")
    return seeds


def _plugins(manager: PluginManager, args: argparse.Namespace) -> int:
    report = plugin_report(manager)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for entry in report:
        if entry["local"]:
            origin = f"local {entry['local']}"
        else:
            origin = f"{entry['distribution']} {entry['version']}" if entry["distribution"] else "builtin"
        print(f"{entry['name']}  ({origin})")
        if entry["error"]:
            print(f"    FAILED TO LOAD: {entry['error']}")
        for kind, names in entry["components"].items():
            print(f"    {kind}s: {', '.join(names)}")
        if entry["hooks"]:
            print(f"    hooks: {', '.join(entry['hooks'])}")
    return 0


def _bench(manager: PluginManager, args: argparse.Namespace) -> int:
    if args.name is None:
        return _list_benchmarks(manager)
    benchmark = manager.registry.get("benchmark", args.name)
    parser = argparse.ArgumentParser(prog=f"adapt bench {benchmark.name}", description=benchmark.summary)
    add_arguments = benchmark.load_arguments()
    if add_arguments is not None:
        add_arguments(parser)
    ratios = benchmark.load()(parser.parse_args(args.options))
    if not isinstance(ratios, dict):
        raise TypeError(f"benchmark {benchmark.name!r} of plugin {benchmark.plugin!r} returned "
                        f"{type(ratios).__name__}; run(args) must return its ratios, {{name: float}}")
    for name, ratio in ratios.items():
        print(f"  ratio {name}: {ratio:.2f}x")
    return 0


def _list_benchmarks(manager: PluginManager) -> int:
    benchmarks = manager.registry.all("benchmark")
    if not benchmarks:
        print("no benchmarks installed (mmadapt-prompts provides `adapt bench prompts`)")
        return 0
    rows = [(b.name, b.distribution or b.plugin, b.summary) for b in benchmarks]
    name_width, plugin_width = (max(len(row[i]) for row in rows) for i in (0, 1))
    print("run one with `adapt bench NAME`; its options: `adapt bench NAME --help`")
    for name, plugin, summary in rows:
        print(f"  {name:<{name_width}}  {plugin:<{plugin_width}}  {summary}")
    return 0


def _recipes(manager: PluginManager, args: argparse.Namespace) -> int:
    from .recipe import read_recipe_file

    if args.dir is not None:
        directory = Path(args.dir)
        rows = [(str(path), "", path) for path in sorted(directory.rglob("*.yaml"))] if directory.is_dir() else []
        if not rows:
            raise UserError(f"no recipe files (*.yaml) under {directory}/")
    else:
        rows = [(recipe.name, recipe.plugin, recipe.path) for recipe in shipped_recipes(manager)]
        if not rows:
            raise UserError("no installed plugin ships recipes (pip install mmadapt-prompts mmadapt-shapes "
                            "brings the quickstart); `adapt recipes --dir DIR` lists the files under DIR")
        print("run one with `adapt run NAME`; copy one to edit with `adapt recipes copy NAME DEST`")
    widths = [max(len(row[i]) for row in rows) for i in (0, 1)]
    for name, plugin, path in rows:
        try:
            description = str(read_recipe_file(path).get("description") or "").strip().splitlines()
        except UserError as exc:
            description = [f"(unreadable: {exc})"]
        columns = [name.ljust(widths[0])] + ([plugin.ljust(widths[1])] if plugin else [])
        print("  ".join([*columns, description[0] if description else ""]).rstrip())
    return 0


def _copy_recipe(manager: PluginManager, args: argparse.Namespace) -> int:
    target = copy_recipe(args.name, args.destination, manager)
    print(f"copied {args.name} to {target}; edit it, then: adapt run {target}")
    return 0


def _runs(args: argparse.Namespace) -> int:
    from .rundir import list_runs

    rows = list_runs(Path(args.directory))
    if not rows:
        print(f"no runs under {args.directory}/")
        return 0
    for run_dir, summary in rows:
        metrics = summary.get("mean") or summary.get("metrics", {})
        headline = ", ".join(f"{k}={v:.2f}" for k, v in list(metrics.items())[:4])
        print(f"{run_dir}  {headline}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
