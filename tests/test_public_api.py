"""The public API plugins rely on changes only together with HOOK_API and the changelog.

tests/public_api.json is a snapshot of the contract: ``HOOK_API``, ``mmadapt.__all__``, the signature
of every public function, class and public method (those mmadapt defines), every hookspec, and the
``register`` callbacks the registration hooks receive. When the API changes on purpose:

1. bump ``HOOK_API`` in core/src/mmadapt/__init__.py,
2. add a CHANGELOG.md line that mentions ``HOOK_API <new number>`` and what changed,
3. regenerate the snapshot: ``python tests/test_public_api.py --update``.
"""

from __future__ import annotations

import inspect
import json
import re
import sys
from functools import partial
from pathlib import Path
from typing import Any

import mmadapt
from mmadapt import hookspecs
from mmadapt.plugins import PluginInfo, _stage, _stage_benchmark, _stage_command
from mmadapt.registry import Registry

ROOT = Path(__file__).resolve().parents[1]
SNAPSHOT = Path(__file__).with_name("public_api.json")
CHANGELOG = ROOT / "CHANGELOG.md"
UPDATE = "python tests/test_public_api.py --update"


def public_api() -> dict[str, Any]:
    """The current contract, in the snapshot's format."""
    return {
        "HOOK_API": mmadapt.HOOK_API,
        "__all__": sorted(mmadapt.__all__),
        "names": {name: describe(getattr(mmadapt, name)) for name in sorted(mmadapt.__all__)},
        "hooks": {
            name: {
                "signature": str(inspect.signature(function)),
                **{key: bool(function.mmadapt_spec.get(key)) for key in ("firstresult", "historic")},
            }
            for name, function in sorted(vars(hookspecs).items())
            if callable(function) and hasattr(function, "mmadapt_spec")
        },
        # What `register(...)` accepts inside the registration hooks (the arguments after the bound ones).
        "register": {
            "component": str(inspect.signature(partial(_stage, "adapter", Registry(), _INFO))),
            "command": str(inspect.signature(partial(_stage_command, Registry(), _INFO))),
            "benchmark": str(inspect.signature(partial(_stage_benchmark, Registry(), _INFO))),
        },
    }


_INFO = PluginInfo(name="snapshot", distribution=None, version=None)


def describe(obj: Any) -> Any:
    """A JSON description of one public name that changes exactly when its interface changes."""
    if inspect.isclass(obj):
        return {"class": _constructor(obj), "members": _members(obj)}
    if inspect.isfunction(obj):
        return {"function": _signature(obj)}
    # Values (HOOK_API, __version__) and marker objects (hookimpl): only the type is part of the contract.
    return {"value": type(obj).__name__}


def _members(cls: type) -> dict[str, str]:
    """Public members that mmadapt classes in the MRO define (not torch's nn.Module methods)."""
    members: dict[str, str] = {}
    for klass in cls.__mro__:
        if not klass.__module__.startswith("mmadapt"):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or name in members:
                continue
            if isinstance(member, (staticmethod, classmethod)):
                members[name] = f"{type(member).__name__} {_signature(member.__func__)}"
            elif isinstance(member, property):
                members[name] = "property"
            elif inspect.isfunction(member):
                members[name] = f"method {_signature(member)}"
            else:
                members[name] = f"attribute {type(member).__name__}"
    return dict(sorted(members.items()))


def _constructor(cls: type) -> str:
    """The constructor's signature, or where it comes from when no mmadapt class defines one.

    ``Backbone()`` is ``nn.Module.__init__``: recording its signature would tie the snapshot to torch.
    """
    owner = next(klass for klass in cls.__mro__ if "__init__" in vars(klass))
    if owner.__module__.startswith("mmadapt"):
        return _signature(cls)
    return f"inherited from {owner.__module__}.{owner.__qualname__}"


def _signature(obj: Any) -> str:
    try:
        return str(inspect.signature(obj))
    except (TypeError, ValueError):  # builtins without introspectable signatures
        return "(...)"


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """``{"names.Adapter.members.forward": ..., ...}`` so a failure lists exactly what changed."""
    if isinstance(tree, dict):
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(flatten(value, f"{prefix}.{key}" if prefix else key))
        return flat
    return {prefix: tree}


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human-readable lines: removed, added and changed entries (``HOOK_API`` excluded)."""
    before, after = flatten({k: v for k, v in old.items() if k != "HOOK_API"}), flatten(
        {k: v for k, v in new.items() if k != "HOOK_API"}
    )
    lines = [f"  removed {key}: {before[key]}" for key in sorted(before.keys() - after.keys())]
    lines += [f"  added   {key}: {after[key]}" for key in sorted(after.keys() - before.keys())]
    lines += [
        f"  changed {key}: {before[key]} -> {after[key]}"
        for key in sorted(before.keys() & after.keys())
        if before[key] != after[key]
    ]
    return lines


def changelog_mentions(number: int) -> bool:
    return re.search(rf"\bHOOK_API {number}\b", CHANGELOG.read_text(encoding="utf-8")) is not None


def test_public_api_matches_the_snapshot():
    stored = json.loads(SNAPSHOT.read_text())
    current = public_api()
    changed = differences(stored, current)
    if changed and current["HOOK_API"] == stored["HOOK_API"]:
        raise AssertionError(
            f"the public API changed but HOOK_API is still {current['HOOK_API']}:\n" + "\n".join(changed) + "\n"
            f"Plugins depend on this API. Bump HOOK_API in core/src/mmadapt/__init__.py, add a CHANGELOG.md line "
            f"mentioning 'HOOK_API {current['HOOK_API'] + 1}' and the change, then run: {UPDATE}"
        )
    assert not changed and current["HOOK_API"] == stored["HOOK_API"], (
        f"HOOK_API is {current['HOOK_API']} but tests/public_api.json records {stored['HOOK_API']}"
        + (":\n" + "\n".join(changed) if changed else "")
        + f"\nRegenerate the snapshot: {UPDATE}"
    )


def test_changelog_mentions_the_current_hook_api():
    assert changelog_mentions(mmadapt.HOOK_API), (
        f"CHANGELOG.md does not mention 'HOOK_API {mmadapt.HOOK_API}'; add a line saying what the API "
        "version covers or what changed in it"
    )


def test_every_public_name_exists_and_is_documented():
    for name in mmadapt.__all__:
        obj = getattr(mmadapt, name)  # lazy names import here: a broken entry fails this test
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert (obj.__doc__ or "").strip(), f"mmadapt.{name} has no docstring"


def update() -> int:
    """Write the snapshot; refuse when the API changed and HOOK_API was not bumped."""
    current = public_api()
    if SNAPSHOT.exists():
        stored = json.loads(SNAPSHOT.read_text())
        changed = differences(stored, current)
        if changed and current["HOOK_API"] <= stored["HOOK_API"]:
            print("the public API changed:\n" + "\n".join(changed), file=sys.stderr)
            print(f"bump HOOK_API (now {current['HOOK_API']}) in core/src/mmadapt/__init__.py first", file=sys.stderr)
            return 1
    SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    print(f"wrote {SNAPSHOT.relative_to(ROOT)} (HOOK_API {current['HOOK_API']})")
    if not changelog_mentions(current["HOOK_API"]):
        print(f"now add a CHANGELOG.md line mentioning 'HOOK_API {current['HOOK_API']}'", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: {UPDATE}")
    sys.exit(update())
