"""A finished run as a shareable folder: ``config.json``, ``adapter.safetensors`` and a ``README.md`` model card.

The folder holds everything :func:`mmadapt.load_adapter` needs besides the installed plugins and the
base backbone (rebuilt by its registered name and config, and checked against the SHA-256 of its
weights): the adapter's section, the task it was trained for (class names, templates, knowledge),
the preprocessing, and the adapter's trainable tensors. ``--merge`` adds the backbone's plain
weights with the adapter folded in, in the model library's own format.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .errors import UserError
from .hub import download_failure, hub_reachable
from .model_card import model_card
from .plugins import PluginManager, get_plugin_manager
from .rundir import SEEDS, SUMMARY

#: ``config.json``'s ``format``; ``format_version`` grows when a reader would misread a newer folder.
FORMAT = "mmadapt-adapter"
FORMAT_VERSION = 1
CONFIG = "config.json"
WEIGHTS = "adapter.safetensors"
CARD = "README.md"
#: Where ``--merge`` writes the plain model, inside the exported folder.
MERGED = "merged"
#: Where the files an adapter reads when built (:meth:`Adapter.exported_files`) are copied.
FILES = "files"


def export_run(run_dir: str | Path, out: str | Path, *, merge: bool = False, seed: int | None = None,
               manager: PluginManager | None = None) -> Path:
    """Write the adapter of a finished run into ``out``; return ``out``.

    ``run_dir`` is a run directory or the parent of a ``--seeds`` run, where ``seed`` picks the seed
    whose weights are exported (default: the first); the model card reports every seed. The weights
    are the checkpoint ``adapt eval`` uses. ``merge`` also writes the plain backbone weights with the
    adapter folded in (:meth:`Adapter.merged_backbone_state`) under ``out/merged``; ``config.json``'s
    ``merged.load`` then holds the code that loads them (``{folder}`` standing for their folder).
    """
    from .runner import load_run

    manager = manager or get_plugin_manager()
    run_path, seeds_summary = _pick_seed(Path(run_dir), seed)
    summary_file = run_path / SUMMARY
    if not summary_file.is_file():
        raise UserError(f"{run_path}: the run has no {SUMMARY}; it did not finish. Finish it with "
                        f"`adapt run --resume {run_path}` and export it then")
    finished = load_run(run_path, manager)
    recipe, adapter = finished.recipe, finished.adapter
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    base = recipe.backbone.build()
    files = _copy_exported_files(adapter.exported_files(), out)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": recipe.name,
        "seed": recipe.seed,
        "versions": {"mmadapt": __version__, "plugins": _plugin_versions(recipe)},
        "method": recipe.adapter.name,
        "adapter": {**recipe.adapter.as_dict(), **files},
        "files": sorted(files),
        "backbone": _backbone_identity(recipe.backbone, base),
        "task": _jsonable(dataclasses.asdict(adapter.task)),
        "preprocessing": dataclasses.asdict(base.preprocessing),
        "metrics": json.loads(summary_file.read_text())["metrics"],
        "seeds": _seed_metrics(seeds_summary),
        "recipe": _jsonable(_container(recipe.given)),
        "checkpoint": finished.checkpoint.name if finished.checkpoint else None,
    }
    _save_tensors(adapter.trainable_state_dict(), out / WEIGHTS, {"format": FORMAT})
    if merge:
        load = base.save_plain_weights(adapter.merged_backbone_state(), out / MERGED)
        if load is None:
            raise UserError(f"backbone {base.name} has no plain weight format to write merged weights in; "
                            "export without --merge")
        config["merged"] = {"folder": MERGED, "load": load}
    (out / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    paper = type(adapter).paper or recipe.adapter.component.summary
    (out / CARD).write_text(model_card(config, paper))
    return out


def state_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 of named tensors: names, dtypes, shapes and bytes, in name order (a backbone's identity)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def push_export(folder: str | Path, repo: str) -> str:
    """Upload an exported folder to the Hugging Face Hub repository ``repo`` (created if needed); return its URL.

    Without a network, or with ``HF_HUB_OFFLINE`` set, a ``UserError`` says so at once and the folder
    stays as written.
    """
    from huggingface_hub import HfApi, constants

    later = (f"the export stays in {folder}; push it later with `adapt export RUN_DIR --out {folder} --push {repo}` "
             f"or `hf upload {repo} {folder}`")
    if constants.HF_HUB_OFFLINE:
        raise UserError(f"cannot push to the Hugging Face Hub: HF_HUB_OFFLINE is set; {later}")
    if not hub_reachable(constants.ENDPOINT):
        raise UserError(f"cannot push to the Hugging Face Hub: {constants.ENDPOINT} cannot be reached; {later}")
    api = HfApi()
    try:
        api.create_repo(repo, exist_ok=True)
        commit = api.upload_folder(folder_path=str(folder), repo_id=repo, commit_message="Upload mmadapt adapter")
    except Exception as exc:
        reason = download_failure(exc)
        if reason is None:
            raise
        detail = str(reason).strip().splitlines()[0] if str(reason).strip() else type(reason).__name__
        raise UserError(f"cannot push to the Hugging Face Hub repository {repo}: {detail}. Log in with "
                        f"`hf auth login` (or set HF_TOKEN) with write access; {later}") from None
    return str(getattr(commit, "repo_url", f"{constants.ENDPOINT}/{repo}"))


def _pick_seed(run_dir: Path, seed: int | None) -> tuple[Path, dict[str, Any] | None]:
    """The single run to export, and the summary over seeds when ``run_dir`` is a ``--seeds`` parent."""
    if not (run_dir / SEEDS).is_file():
        if seed is not None:
            raise UserError(f"{run_dir} is a single run; --seed picks a seed of a `--seeds` run's parent folder")
        return run_dir, None
    seeds = json.loads((run_dir / SEEDS).read_text())["seeds"]
    chosen = seeds[0] if seed is None else seed
    if chosen not in seeds:
        raise UserError(f"{run_dir} ran seeds {seeds}; --seed {seed} is not one of them")
    summary = run_dir / SUMMARY
    return run_dir / f"seed{chosen}", json.loads(summary.read_text()) if summary.is_file() else None


def _seed_metrics(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    return {"seeds": summary["seeds"], "mean": summary["mean"], "std": summary["std"],
            "runs": {str(run["seed"]): run["metrics"] for run in summary.get("runs", [])}}


def _backbone_identity(section: Any, base: Any) -> dict[str, Any]:
    """The base model: registered name and config, its own name, arch and pretrained tag, its weights' hash."""
    options = section.as_dict()
    return {
        "section": options,
        "model": base.name,
        "arch": options.get("arch", base.name),
        "pretrained": options.get("pretrained", options.get("weights")),
        "weights_sha256": state_sha256(base.state_dict()),
    }


def _plugin_versions(recipe: Any) -> dict[str, str]:
    """Distribution and version of every plugin whose component the adapter and backbone come from."""
    versions = {}
    for section in (recipe.backbone, recipe.adapter):
        component = section.component
        if component.distribution and component.distribution != "mmadapt":  # the core is listed on its own
            versions[component.distribution] = component.version or "unknown"
    return versions


def _copy_exported_files(files: dict[str, Any], out: Path) -> dict[str, Any]:
    """Copy each listed file to ``out/files/<key>/``; the keys' new values, relative to ``out``."""
    copied: dict[str, Any] = {}
    for key, paths in files.items():
        single = isinstance(paths, (str, Path))
        relative: list[str] = []
        for index, path in enumerate([paths] if single else paths):
            source = Path(path)
            if not source.is_file():
                raise UserError(f"adapter.{key}: {source} does not exist; the export needs the file the run used")
            # Files of one key from different folders may share a name; the copies must not.
            taken = {Path(name).name for name in relative}
            target = out / FILES / key / (source.name if source.name not in taken else f"{index}-{source.name}")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            relative.append(target.relative_to(out).as_posix())
        copied[key] = relative[0] if single else relative
    return copied


def _save_tensors(state: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    # Each tensor on its own storage: safetensors refuses tensors that share memory.
    save_file({name: tensor.detach().cpu().clone().contiguous() for name, tensor in state.items()}, str(path),
              metadata=metadata)


def _container(config: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(config, resolve=True)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
