"""Test modules of the core and of every plugin are collected in one pytest run (rootdir imports), so
two modules with one basename would stop the run with an "import file mismatch"."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_module_and_test_helper_has_a_basename_of_its_own():
    modules = [p for d in [ROOT / "tests", *sorted((ROOT / "plugins").glob("*/tests"))] for p in d.glob("*.py")]
    names = Counter(p.name for p in modules if p.name != "conftest.py")
    assert len(modules) > 20
    assert [name for name, count in names.items() if count > 1] == []
