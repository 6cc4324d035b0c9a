"""``adapt bench lane``: the measured MACs of one lane match multi-lane.md's analytic figures at ViT-B/16."""

from __future__ import annotations

import argparse

import pytest
from mmadapt.testing import adapt_command
from mmadapt_lane.bench import analytic_macs, build_lanes, counted_macs, random_vit


@pytest.fixture(scope="module")
def vit_b16():
    return random_vit("vit_base_patch16_224")


@pytest.mark.parametrize(("tokens", "lane", "full", "ratio"), [(20, 1.87, 17.48, 9.4), (10, 0.97, 17.46, 17.9)])
def test_measured_macs_match_the_analytic_table_at_vit_b16(vit_b16, tokens, lane, full, ratio):
    args = argparse.Namespace(
        arch="vit_base_patch16_224", selectors=tokens, prompt_length=tokens, prompt_layers=5, batch_size=1
    )
    _, _, frozen_stream, summarised_lane, full_lane = build_lanes(args, vit_b16)
    measured = {
        name: counted_macs(fn) / 1e9
        for name, fn in (("frozen", frozen_stream), ("lane", summarised_lane), ("full", full_lane))
    }
    assert measured["frozen"] == pytest.approx(17.45, abs=0.005)
    assert measured["lane"] == pytest.approx(lane, abs=0.005)
    assert measured["full"] == pytest.approx(full, abs=0.005)
    assert measured["full"] / measured["lane"] == pytest.approx(ratio, rel=0.05)
    analytic = analytic_macs(197, 768, 12, tokens, tokens, 5)
    assert measured["lane"] == pytest.approx(analytic["lane"] / 1e9, rel=1e-6)


def test_the_benchmark_prints_both_lanes_and_the_cost_per_task_count(capsys):
    code = adapt_command(
        [
            "bench",
            "lane",
            "--arch",
            "vit_tiny_patch16_224",
            "--selectors",
            "4",
            "--prompt-length",
            "4",
            "--prompt-layers",
            "2",
            "--tasks",
            "1,3",
            "--repeats",
            "1",
            "--threads",
            "1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "summarised lane" in out and "full-token lane" in out
    assert "ratio full / summarised MACs" in out and "ratio full / summarised time" in out
    rows = [line.split() for line in out.splitlines() if line.split()[:1] in (["1"], ["3"])]
    assert len(rows) == 2 and float(rows[1][1]) > float(rows[0][1])
