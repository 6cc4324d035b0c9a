"""`adapt bench`: benchmarks registered by plugins are listed, run with their own options, and an
unknown name is a clear error."""

from __future__ import annotations

import argparse

import pytest
from mmadapt import hookimpl
from mmadapt.cli import main


class TimingPlugin:
    """A benchmark whose ratio is computed from its options, so the test knows what must be printed."""

    def __init__(self) -> None:
        self.seen: list[argparse.Namespace] = []

    @hookimpl
    def register_benchmarks(self, register):
        register("halves", self.run, "reference takes twice as long as ours", add_arguments=self.arguments)

    @staticmethod
    def arguments(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--reference-s", type=float, default=2.0)

    def run(self, args: argparse.Namespace) -> dict[str, float]:
        self.seen.append(args)
        print(f"reference {args.reference_s} s, ours 1.0 s")
        return {"reference / ours": args.reference_s / 1.0}


def test_bench_lists_every_benchmark_with_its_plugin(register_plugin, capsys):
    register_plugin(TimingPlugin(), "timing-plugin")
    assert main(["bench"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "timing-plugin" in listed["halves"] and "reference takes twice as long as ours" in listed["halves"]


def test_prompts_benchmark_is_listed(plugin_manager, capsys):
    pytest.importorskip("mmadapt_prompts")
    assert main(["bench"]) == 0
    listed = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert "mmadapt-prompts" in listed["prompts"]


def test_bench_name_parses_the_benchmarks_options_and_prints_its_ratios(register_plugin, capsys):
    plugin = TimingPlugin()
    register_plugin(plugin, "timing-plugin")
    assert main(["bench", "halves", "--reference-s", "3"]) == 0
    assert [args.reference_s for args in plugin.seen] == [3.0]
    out = capsys.readouterr().out
    assert "reference 3.0 s, ours 1.0 s" in out
    assert "ratio reference / ours: 3.00x" in out


def test_unknown_benchmark_is_a_clear_error(register_plugin, capsys):
    register_plugin(TimingPlugin(), "timing-plugin")
    assert main(["bench", "halfs"]) == 2
    err = capsys.readouterr().err
    assert "unknown benchmark 'halfs'" in err and "did you mean 'halves'" in err
    assert "Traceback" not in err
