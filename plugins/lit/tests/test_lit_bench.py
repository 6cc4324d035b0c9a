"""``adapt bench lit`` runs both parts on tiny settings and returns their ratios."""

from __future__ import annotations

import argparse

from mmadapt_lit import bench


def test_the_bench_times_every_network_and_races_rave_against_clip_lit(capsys):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    args = parser.parse_args(
        [
            "--part",
            "both",
            "--sizes",
            "24",
            "--networks",
            "clip-lit-net",
            "zero-dce++",
            "--network",
            "zero-dce++",
            "--max-steps",
            "4",
            "--check-every",
            "2",
            "--train-size",
            "8",
            "--prompt-init",
            "5",
        ]
    )
    ratios = bench.main(args)
    assert set(ratios) >= {"clip-lit-net / zero-dce++ @24"}
    assert any(key.startswith("clip-lit / rave time") for key in ratios)
    assert all(value > 0 for value in ratios.values())
    out = capsys.readouterr().out
    assert "enhancement steps" in out and "s per step" in out
