"""The ``README.md`` model card of an exported adapter: what it is, how well it did, how to load it."""

from __future__ import annotations

import json
from typing import Any


def model_card(config: dict[str, Any], paper: str) -> str:
    """A Markdown model card from an export's ``config.json`` contents; ``paper`` cites the method."""
    backbone = config["backbone"]
    task = config["task"]
    plugins = ", ".join(f"{name} {version}" for name, version in config["versions"]["plugins"].items())
    lines = [
        "---",
        "library_name: mmadapt",
        "tags: [mmadapt, " + json.dumps(config["method"]) + "]",
        "---",
        "",
        f"# {config['name']}: {config['method']} on {backbone['model']}",
        "",
        f"A `{config['method']}` adapter trained with mmadapt (mmadapt "
        f"{config['versions']['mmadapt']}{', ' + plugins if plugins else ''}) on the base model "
        f"`{backbone['model']}` (backbone section `{json.dumps(backbone['section'])}`, weights SHA-256 "
        f"`{backbone['weights_sha256'][:16]}…`).",
        "",
        f"- Method: {paper}",
        f"- Task: {task.get('name') or 'unnamed'} ({task['kind']}, {len(task['classnames'])} classes: "
        f"{', '.join(task['classnames'][:12])}{' …' if len(task['classnames']) > 12 else ''})",
        f"- Seed of these weights: {config['seed']}",
        "",
        "## Metrics",
        "",
        *_metrics_table(config),
        "",
        "## How to load",
        "",
        "```python",
        "import mmadapt",
        "",
        'adapter = mmadapt.load_adapter("PATH_OR_hf-hub:ORG/NAME")',
        *_usage(task["kind"]),
        "```",
        "",
        "The base model is rebuilt from its registered backbone and checked against the hash above; "
        "the plugins named above must be installed. `adapt predict PATH IMAGE...` prints the top classes.",
    ]
    if config.get("merged"):
        lines += ["", "## Merged weights", "", "`merged/` holds the base model with the adapter folded in, "
                  "loadable without mmadapt (from the folder's copy on disk):", "", "```python",
                  *config["merged"]["load"].format(folder=config["merged"]["folder"]).splitlines(), "```"]
    lines += ["", "## Recipe", "", "```yaml", *_yaml(config["recipe"]), "```", ""]
    return "\n".join(lines)


def _metrics_table(config: dict[str, Any]) -> list[str]:
    seeds = config.get("seeds")
    if seeds:
        header = ["| metric | mean ± std | " + " | ".join(f"seed {s}" for s in seeds["seeds"]) + " |",
                  "|---|---|" + "---|" * len(seeds["seeds"])]
        rows = []
        for key, mean in seeds["mean"].items():
            per_seed = [seeds["runs"].get(str(s), {}).get(key) for s in seeds["seeds"]]
            shown = " | ".join("" if v is None else f"{v:.2f}" for v in per_seed)
            rows.append(f"| {key} | {mean:.2f} ± {seeds['std'][key]:.2f} | {shown} |")
        return header + rows
    return ["| metric | seed " + str(config["seed"]) + " |", "|---|---|",
            *(f"| {key} | {value:.2f} |" for key, value in config["metrics"].items())]


def _usage(kind: str) -> list[str]:
    if kind == "image-to-image":
        return ["enhanced = adapter.enhance([\"photo.png\"])  # RGB in [0, 1], the input's size"]
    return ['print(adapter.classify(["image.png"]))  # the top class name per image',
            'logits = adapter.logits(["image.png"])']


def _yaml(recipe: dict[str, Any]) -> list[str]:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(recipe)).rstrip("\n").splitlines()
