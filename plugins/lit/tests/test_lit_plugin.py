"""The plugin's entry point is cheap to import, and `adapt bench` lists its benchmark."""

from __future__ import annotations

from mmadapt.testing import adapt_command, assert_import_is_cheap


def test_the_entry_point_imports_neither_torch_nor_diffusers():
    assert_import_is_cheap("mmadapt_lit.plugin", heavy=("torch", "diffusers", "skimage", "open_clip"))


def test_adapt_bench_lists_the_benchmark(capsys):
    assert adapt_command(["bench"]) == 0
    listed = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert any(row[:2] == ["lit", "mmadapt-lit"] for row in listed if len(row) > 1)
