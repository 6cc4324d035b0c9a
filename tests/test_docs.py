"""Documentation stays in step with the code."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from mmadapt import hookspecs

DOCS = Path(__file__).resolve().parents[1] / "docs"


def hookspec_signatures() -> dict[str, str]:
    return {
        name: f"{name}({', '.join(inspect.signature(fn).parameters)})"
        for name, fn in vars(hookspecs).items()
        if callable(fn) and hasattr(fn, "mmadapt_spec")
    }


def test_every_hook_is_documented_with_its_signature():
    documented = set(re.findall(r"^### (\w+\([^)]*\))", (DOCS / "hooks.md").read_text(), re.MULTILINE))
    expected = set(hookspec_signatures().values())
    assert expected, "no hookspecs found"
    assert expected - documented == set(), "hooks missing from docs/hooks.md"
    assert documented - expected == set(), "docs/hooks.md documents hooks that do not exist"


def test_every_hook_has_a_docstring():
    for name, fn in vars(hookspecs).items():
        if callable(fn) and hasattr(fn, "mmadapt_spec"):
            assert (fn.__doc__ or "").strip(), f"hook {name} has no docstring"
