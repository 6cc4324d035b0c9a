"""Dataset sections inside a protocol's config (the ``multitask`` protocol's ``datasets``).

The core validates the recipe's own ``data:`` section; further datasets are validated here the same
way, against the registry of the process-wide plugin manager: known name, known keys (with a
suggestion), types and the dataset config's own checks. Cheap to import.
"""

from __future__ import annotations

import difflib
from dataclasses import fields
from typing import Any

from mmadapt import get_plugin_manager


def dataset_sections(sections: list[Any], where: str = "protocol.datasets") -> list[tuple[Any, Any]]:
    """``(component, config)`` of each dataset section; one ``ValueError`` lists every problem."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    registry = get_plugin_manager().registry
    problems: list[str] = []
    built = []
    for index, section in enumerate(sections):
        here = f"{where}[{index}]"
        if not isinstance(section, dict) or "name" not in section:
            problems.append(f"{here}: must be a mapping with a 'name' key naming a dataset")
            continue
        name = str(section["name"])
        component = registry.find("dataset", name)
        if component is None:
            problems.append(f"{here}.name: {registry.explain_missing('dataset', name, with_failures=False)}")
            continue
        options = {key: value for key, value in section.items() if key != "name"}
        known = [f.name for f in fields(component.config)] if component.config else []
        unknown = [key for key in options if key not in known]
        for key in unknown:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{here}.{key}: unknown key (dataset '{name}'){hint}")
        if unknown:
            continue
        if component.config is None:
            built.append((component, None))
            continue
        try:
            config = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(component.config), options))
        except (ValueError, TypeError, OmegaConfBaseException) as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            problems.append(f"{here}: {message} (dataset '{name}')")
            continue
        built.append((component, config))
    if problems:
        raise ValueError("; ".join(problems))
    return built
