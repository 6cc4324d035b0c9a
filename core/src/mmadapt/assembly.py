"""One way from a recipe to its parts: the data a run uses, and the backbone, protocol and adapter built on it.

A fresh run, ``--resume``, ``adapt eval``, :func:`mmadapt.load_run` and a protocol's extra datasets
all come through here, so they see the same data. Few-shot items are saved in ``few_shot.json`` by
name (a file's path) as well as by position; whoever rebuilds the run later takes the same items
from it, wherever they now sit in the dataset, and stops with the names of those that are gone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .data import DataBundle, Split, apply_few_shot, apply_indices
from .errors import UserError
from .knowledge import apply_knowledge
from .processes import is_main_process
from .protocol import Protocol, check_adapter_interface
from .recipe import Recipe, Section
from .rundir import RunDir
from .sampling import seed_everything

#: The few-shot items of a run: the ``data:`` section's at the top level, a protocol's extra datasets
#: under ``"extra"`` by the protocol's name for them.
FEW_SHOT = "few_shot.json"

#: How many missing items an error names before it only counts the rest.
_NAMED_MISSING = 5


@dataclass
class Assembly:
    """A recipe's components as a run uses them (no accelerator yet: that is the engine's)."""

    recipe: Recipe
    backbone: Any
    #: The data after knowledge, few-shot selection and the protocol's ``prepare``.
    bundle: DataBundle
    protocol: Protocol
    adapter: Any


def assemble(recipe: Recipe, *, saved_in: RunDir | None = None, save_in: RunDir | None = None) -> Assembly:
    """Build backbone, data, protocol and adapter for one seed of ``recipe``.

    Few-shot items come from ``saved_in``'s ``few_shot.json`` where it holds a selection for the same
    dataset, shots and seed (resume, ``adapt eval``, ``load_run``); otherwise they are sampled. The
    items used are written to ``save_in`` (on the main process) when it is given.
    """
    seed_everything(recipe.seed, "setup")
    backbone = recipe.backbone.build()
    saved = read_selections(saved_in)
    bundle, selection = prepare_data(recipe.data, recipe.seed, saved, where=_file(saved_in))
    protocol = recipe.protocol.build()
    extra_sections = protocol.extra_datasets()
    extra, extra_selections = {}, {}
    for name, section in extra_sections.items():
        extra[name], chosen = prepare_data(section, recipe.seed, saved.get("extra", {}).get(name),
                                           where=_file(saved_in))
        if chosen is not None:
            extra_selections[name] = chosen
    if save_in is not None and (selection or extra_selections) and is_main_process():
        extra_entry = {"extra": extra_selections} if extra_selections else {}
        save_in.write_json(FEW_SHOT, {**(selection or {}), **extra_entry})
    bundle = protocol.prepare(bundle, extra) if extra_sections else protocol.prepare(bundle)
    adapter = recipe.adapter.build(backbone, bundle.task)
    check_adapter_interface(protocol, adapter, recipe.protocol.name, recipe.adapter.name)
    return Assembly(recipe, backbone, bundle, protocol, adapter)


def prepare_data(
    section: Section, seed: int, saved: dict[str, Any] | None = None, *, where: str = FEW_SHOT
) -> tuple[DataBundle, dict[str, Any] | None]:
    """A dataset section's data as a run uses it: built, its knowledge applied, few-shot reduced.

    Knowledge comes first, so classes a protocol sets aside later keep theirs. With ``shots`` the
    items of ``saved`` (an entry of ``few_shot.json``) are taken when it was made for this dataset,
    shots and seed; otherwise Dassl's sample is drawn. Returns the data and the selection to save
    (None without ``shots``). ``where`` names the file ``saved`` came from in errors.
    """
    config = section.config
    bundle = apply_knowledge(section.build(), config.knowledge_file)
    if not config.shots:
        return bundle, None
    dataset = _jsonable(section.as_dict())
    if saved is not None and _made_for(saved, dataset, config.shots, seed):
        indices = _saved_positions(bundle, saved, where)
        kept = {key: value for key, value in saved.items() if key != "extra"}
        return apply_indices(bundle, indices), {**kept, "indices": indices}
    sampled, indices = apply_few_shot(bundle, config.shots, seed)
    items = {name: [bundle.split(name).item_key(i) for i in chosen] for name, chosen in indices.items()}
    return sampled, {"shots": config.shots, "seed": seed, "dataset": dataset, "indices": indices, "items": items}


def read_selections(run_dir: RunDir | None) -> dict[str, Any]:
    """The few-shot selections saved in a run directory; empty when it has none."""
    if run_dir is None or not (run_dir.path / FEW_SHOT).is_file():
        return {}
    return run_dir.read_json(FEW_SHOT)


def _made_for(saved: dict[str, Any], dataset: dict[str, Any], shots: int, seed: int) -> bool:
    # Run folders from before items were named hold no dataset; their selection is taken as theirs.
    return saved.get("shots") == shots and saved.get("seed") == seed and saved.get("dataset", dataset) == dataset


def _saved_positions(bundle: DataBundle, saved: dict[str, Any], where: str) -> dict[str, list[int]]:
    """Where the saved items sit in the dataset now, found by name (saved positions where no names were saved)."""
    if "items" not in saved:
        return saved["indices"]
    indices, missing = {}, []
    for name, keys in saved["items"].items():
        indices[name], gone = _positions(bundle.split(name), keys)
        missing += gone
    if missing:
        shown = ", ".join(missing[:_NAMED_MISSING])
        more = f" and {len(missing) - _NAMED_MISSING} more" if len(missing) > _NAMED_MISSING else ""
        raise UserError(
            f"{where}: {len(missing)} of the few-shot items this run was trained on are no longer in the dataset: "
            f"{shown}{more}. Restore them to rebuild the run, or start a new run, which samples afresh."
        )
    return indices


def _positions(split: Split, keys: Sequence[str]) -> tuple[list[int], list[str]]:
    """Where each named item now sits in ``split`` (a name listed twice takes its places in turn); names not found."""
    places: dict[str, list[int]] = {}
    for index in range(len(split)):
        places.setdefault(split.item_key(index), []).append(index)
    found, missing = [], []
    for key in keys:
        if places.get(key):
            found.append(places[key].pop(0))
        else:
            missing.append(key)
    return found, missing


def _jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON (tuples become lists), so saved and fresh values compare equal."""
    return json.loads(json.dumps(value, default=str))


def _file(run_dir: RunDir | None) -> str:
    return str(Path(run_dir.path) / FEW_SHOT) if run_dir is not None else FEW_SHOT
