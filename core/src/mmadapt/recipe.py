"""Recipe loading: YAML + command-line overrides, validated against the schema and component configs.

Every problem is collected before failing, and each names the recipe file, the key path, the
component and the closest valid key. Components are looked up by registry name only, so a recipe
can never make mmadapt import arbitrary code.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from .config import COMPONENT_SECTIONS, EvalConfig, NestedSection, RecipeSchema, TrainConfig, nested_section_fields
from .errors import RecipeError, UserError, did_you_mean
from .registry import Component, Registry


@dataclass
class Section:
    """One validated component section: the component and its config instance."""

    component: Component
    config: Any

    @property
    def name(self) -> str:
        """The component's registry name."""
        return self.component.name

    def build(self, *args: Any) -> Any:
        """Build the component from its config and the kind's further arguments."""
        return self.component.build(self.config, *args)

    def __repr__(self) -> str:
        return f"Section({self.component.kind} {self.name!r}, {self.config!r})"

    def as_dict(self) -> dict[str, Any]:
        """``{"name": ..., **options}`` with every default filled in, nested sections included."""
        options = _plain(self.config) if self.config is not None else {}
        return {"name": self.name, **options}


def _plain(value: Any) -> Any:
    """``value`` as plain YAML data: ``dataclasses.asdict`` that also writes nested sections out."""
    if isinstance(value, Section):
        return value.as_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item) for item in value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return copy.deepcopy(value)


@dataclass
class Recipe:
    """A validated recipe."""

    source: str
    name: str
    description: str
    seed: int
    requires: list[str]
    backbone: Section
    data: Section
    adapter: Section
    objective: Section
    protocol: Section
    train: TrainConfig
    eval: EvalConfig
    metrics: list[Section]
    #: The recipe as given (after overrides), and with every default filled in.
    given: DictConfig
    resolved: DictConfig

    def with_seed(self, seed: int) -> Recipe:
        """A copy of the recipe with another seed, as if ``seed=N`` had been given as an override."""
        given, resolved = self.given.copy(), self.resolved.copy()
        given.seed = resolved.seed = seed
        return dataclasses.replace(self, seed=seed, given=given, resolved=resolved)


def read_recipe_file(path: str | Path) -> DictConfig:
    """Read a recipe YAML file, turning I/O and syntax problems into a clear ``UserError``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: recipe file not found (list bundled recipes with `adapt recipes`)")
    try:
        loaded = OmegaConf.load(path)
    except Exception as exc:  # yaml.YAMLError and OmegaConf errors carry the line number
        raise UserError(f"{path}: not a valid YAML recipe: {exc}") from None
    if not isinstance(loaded, DictConfig):
        raise UserError(f"{path}: a recipe must be a mapping of sections (name, backbone, data, ...)")
    return loaded


def load_recipe(path: str | Path, overrides: list[str] | None = None, *, registry: Registry) -> Recipe:
    """Load, override and validate a recipe; raise ``RecipeError`` listing every problem."""
    given = read_recipe_file(path)
    check_requirements(given.get("requires") or [], str(path))
    return validate_recipe(given, str(path), overrides or [], registry=registry)


def check_requirements(requires: Any, source: str) -> None:
    """Fail with one line per unmet ``requires:`` entry and the pip command that fixes it."""
    from importlib import metadata

    from packaging.requirements import InvalidRequirement, Requirement

    # A string would be iterated character by character; anything but a list is a schema error.
    if isinstance(requires, str) or not isinstance(requires, Sequence):
        expected = "a list of requirement strings like ['mmadapt-prompts>=0.1']"
        raise RecipeError(source, [f"requires: expected {expected}; got {requires!r}"])
    problems = []
    for text in requires:
        try:
            requirement = Requirement(str(text))
        except InvalidRequirement as exc:
            # packaging's message spans lines (the text and a caret); one line per requirement is enough.
            problems.append(f"requires: {text!r} is not a valid requirement ({_first_line(exc)})")
            continue
        try:
            installed = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            problems.append(f"requires: {requirement} is not installed; fix: pip install '{requirement}'")
            continue
        if requirement.specifier and not requirement.specifier.contains(installed, prereleases=True):
            problems.append(
                f"requires: {requirement} but {requirement.name} {installed} is installed; "
                f"fix: pip install -U '{requirement}'"
            )
    if problems:
        raise RecipeError(source, problems)


class SectionError(UserError, ValueError):
    """Problems in component sections validated by :func:`validate_sections`, reported together.

    A ``ValueError`` too, so raised from a config dataclass's ``__post_init__`` it becomes one more
    problem of the recipe being validated.
    """


def validate_sections(kind: str, entries: Any, *, where: str) -> list[Section]:
    """Validate component sections a protocol or component builds at run time (a metric per task, say).

    ``entries`` is a list of ``{name: ..., **options}`` mappings (or bare names) of components of
    ``kind`` (``dataset``, ``backbone``, ...); ``where`` is their key path in messages
    (``protocol metrics``). Each is checked like a recipe section: known name, known keys with a
    suggestion, types, the config's own checks. Every problem is collected into one
    :class:`SectionError`. Components come from the process-wide plugin manager. Sections a recipe
    gives inside a component's config are declared with :func:`mmadapt.nested_sections` instead,
    and validated with the recipe.
    """
    if not isinstance(entries, (list, tuple)):
        raise SectionError(f"{where}: expected a list of {kind} sections, got {entries!r}")
    registry = _process_registry()
    problems: list[str] = []
    sections = [
        section
        for index, entry in enumerate(entries)
        if (section := _validate_section(f"{where}[{index}]", kind, entry, registry, problems))
    ]
    if problems:
        raise SectionError("; ".join(problems))
    return sections


def validate_section(kind: str, entry: Any, *, where: str) -> Section:
    """One component section (a metric, a backbone), checked like :func:`validate_sections` checks a list."""
    problems: list[str] = []
    section = _validate_section(where, kind, entry, _process_registry(), problems)
    if problems or section is None:
        raise SectionError("; ".join(problems))
    return section


def _process_registry() -> Registry:
    from .plugins import get_plugin_manager

    return get_plugin_manager().registry


def validate_recipe(given: DictConfig, source: str, overrides: list[str], *, registry: Registry) -> Recipe:
    """Validate an already-read recipe mapping; ``source`` names it in messages."""
    problems: list[str] = []
    if overrides:
        try:
            given = OmegaConf.merge(given, OmegaConf.from_dotlist(list(overrides)))
        except (OmegaConfBaseException, TypeError, ValueError) as exc:
            raise RecipeError(
                source, [f"command-line override {' '.join(overrides)}: {_first_line(exc)} (to change one entry "
                         "of a list, override the whole list: 'eval.metrics=[accuracy,f1]')"]
            ) from None

    plain = _to_plain(given, source)
    schema_fields = {f.name for f in dataclasses.fields(RecipeSchema)}
    for key in plain:
        if key not in schema_fields:
            problems.append(f"{key}: unknown top-level key{did_you_mean(key, schema_fields)}")

    defaults = RecipeSchema()
    train = _validate_config("train", TrainConfig, plain.get("train", {}), registry, problems)
    evaluation = _validate_config("eval", EvalConfig, plain.get("eval", {}), registry, problems)
    sections: dict[str, Section | None] = {}
    for section, kind in COMPONENT_SECTIONS.items():
        value = plain.get(section, getattr(defaults, section))
        sections[section] = _validate_section(section, kind, value, registry, problems)
    metrics = [
        section
        for index, entry in enumerate(evaluation.metrics if evaluation else [])
        if (section := _validate_section(f"eval.metrics[{index}]", "metric", entry, registry, problems))
    ]
    for key, kind in (("name", str), ("description", str), ("seed", int)):
        if key in plain and not isinstance(plain[key], kind):
            problems.append(f"{key}: expected {kind.__name__}, got {plain[key]!r}")
    requires = plain.get("requires", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        problems.append("requires: expected a list of requirement strings like 'mmadapt-prompts>=0.1'")
        requires = []
    if problems:
        if any("unknown" in p and ".name:" in p for p in problems) and registry.failures:
            problems.append("some plugins failed to load (see `adapt plugins`):" + registry.failure_report())
        raise RecipeError(source, problems)

    resolved = OmegaConf.create(
        {
            "name": plain.get("name", defaults.name),
            "description": plain.get("description", defaults.description),
            "seed": plain.get("seed", defaults.seed),
            "requires": requires,
            **{key: sec.as_dict() for key, sec in sections.items()},
            "train": dataclasses.asdict(train),
            "eval": {**dataclasses.asdict(evaluation), "metrics": [m.as_dict() for m in metrics]},
        }
    )
    return Recipe(
        source=source,
        name=resolved.name,
        description=resolved.description,
        seed=int(resolved.seed),
        requires=list(requires),
        train=train,
        eval=evaluation,
        metrics=metrics,
        given=given,
        resolved=resolved,
        **sections,
    )


def _to_plain(given: DictConfig, source: str) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(given, resolve=True)
    except OmegaConfBaseException as exc:
        raise RecipeError(source, [f"cannot resolve an interpolation: {_first_line(exc)}"]) from None


def _validate_section(
    path: str, kind: str, value: Any, registry: Registry, problems: list[str]
) -> Section | None:
    """Validate ``{name: ..., **options}`` against the named component's config dataclass."""
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or "name" not in value:
        problems.append(f"{path}: must be a mapping with a 'name' key naming a {kind}")
        return None
    name = value["name"]
    component = registry.find(kind, str(name))
    if component is None:
        hint = ""
        if any(ch in str(name) for ch in ":/") or "." in str(name):
            hint = " (recipes name components by their registered name; import paths are never accepted)"
        problems.append(f"{path}.name: {registry.explain_missing(kind, str(name), with_failures=False)}{hint}")
        return None
    options = {k: v for k, v in value.items() if k != "name"}
    before = len(problems)
    config = _validate_config(path, component.config, options, registry, problems, owner=f"{kind} '{name}'")
    return Section(component, config) if len(problems) == before else None


def _validate_config(
    path: str,
    config_cls: type | None,
    options: Any,
    registry: Registry,
    problems: list[str],
    owner: str | None = None,
) -> Any:
    """Check keys and types of ``options`` against ``config_cls`` and build the instance.

    Nested-section fields are validated here as sections of their kind (recursively); OmegaConf
    checks the other keys against the config without them.
    """
    owner_text = f" ({owner})" if owner else ""
    if config_cls is None:
        if options:
            problems.append(f"{path}: {owner or path} takes no options; got {sorted(options)}")
        return None
    if not isinstance(options, dict):
        problems.append(f"{path}: expected a mapping, got {options!r}")
        return None
    fields = {f.name for f in dataclasses.fields(config_cls)}
    start = len(problems)
    for key in options:
        if key not in fields:
            problems.append(f"{path}.{key}: unknown key{owner_text}{did_you_mean(key, fields)}")
    nested = nested_section_fields(config_cls)
    sections = {
        key: _validate_nested(f"{path}.{key}", declared, options.get(key, _ABSENT), registry, problems, owner_text)
        for key, declared in nested.items()
    }
    nested_failed = len(problems) > start
    schema = OmegaConf.structured(_plain_schema(config_cls))
    valid = {}
    for key, value in options.items():
        if key in fields and key not in nested:
            try:
                OmegaConf.merge(schema, {key: value})
                valid[key] = value
            except (OmegaConfBaseException, TypeError, ValueError) as exc:
                problems.append(f"{path}.{key}: {_first_line(exc)}{owner_text}; got {value!r}")
    try:
        merged = OmegaConf.merge(schema, valid)
        missing = sorted(OmegaConf.missing_keys(merged))
        if missing:
            problems.extend(f"{path}.{key}: required key{owner_text} is missing" for key in missing)
            return None
        if nested_failed:
            return None
        instance = _instantiate(config_cls, merged, sections)
    except (ValueError, TypeError) as exc:
        problems.append(str(exc) if str(exc).startswith(f"{path}.") else f"{path}: {exc}")
        return None
    except OmegaConfBaseException as exc:
        problems.append(f"{path}: {_first_line(exc)}")
        return None
    return instance if len(problems) == start else None


#: A nested-section key the recipe leaves out (``None`` is an explicit ``null``).
_ABSENT = object()


def _validate_nested(
    path: str, declared: NestedSection, value: Any, registry: Registry, problems: list[str], owner_text: str
) -> Section | list[Section] | None:
    """The validated section(s) of one nested-section field, or what stands in for them after a problem."""
    if declared.many:
        if value is _ABSENT:
            return []
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list of {declared.kind} sections{owner_text}, got {value!r}")
            return []
        return [
            section
            for index, entry in enumerate(value)
            if (section := _validate_section(f"{path}[{index}]", declared.kind, entry, registry, problems))
        ]
    if value is _ABSENT or value is None:
        if not declared.optional:
            problem = "is missing" if value is _ABSENT else "is null"
            problems.append(f"{path}: required {declared.kind} section{owner_text} {problem}")
        return None
    return _validate_section(path, declared.kind, value, registry, problems)


@functools.cache
def _plain_schema(config_cls: type) -> type:
    """``config_cls`` without its nested-section fields (and without its checks), for OmegaConf's type checks.

    A config without nested sections is its own schema. Field types are resolved one by one, so a
    nested field's annotation (``Section``, often imported for type checkers only) is never evaluated.
    """
    nested = nested_section_fields(config_cls)
    if not nested:
        return config_cls
    fields = [
        (
            f.name,
            _field_type(config_cls, f.name),
            dataclasses.field(default=f.default, default_factory=f.default_factory, kw_only=f.kw_only),
        )
        for f in dataclasses.fields(config_cls)
        if f.init and f.name not in nested
    ]
    return dataclasses.make_dataclass(config_cls.__name__, fields)


def _field_type(config_cls: type, name: str) -> Any:
    """The evaluated annotation of field ``name``, from the class of the MRO that declares it."""
    for klass in config_cls.__mro__:
        annotation = vars(klass).get("__annotations__", {}).get(name)
        if annotation is not None:
            if isinstance(annotation, str):
                return eval(annotation, vars(sys.modules[klass.__module__]), dict(vars(klass)))
            return annotation
    raise TypeError(f"{config_cls.__name__}.{name} has no annotation")


def _instantiate(config_cls: type, merged: DictConfig, sections: dict[str, Any]) -> Any:
    """The config instance (its ``__post_init__`` runs once): OmegaConf's values plus the nested sections."""
    if not sections:
        return OmegaConf.to_object(merged)
    checked = OmegaConf.to_object(merged)
    values = {f.name: getattr(checked, f.name) for f in dataclasses.fields(checked)}
    return config_cls(**values, **sections)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


__all__ = ["Recipe", "Section", "SectionError", "load_recipe", "read_recipe_file", "validate_recipe",
           "validate_section", "validate_sections"]
