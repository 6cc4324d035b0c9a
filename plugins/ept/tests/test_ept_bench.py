"""``adapt bench ept`` runs both variants on a tiny model and reports both ratios; the matched rank."""

from __future__ import annotations

import json
import re

import pytest
from mmadapt.testing import adapt_command
from mmadapt_ept.bench import matched_rank


def test_matched_rank_is_the_closest_budget():
    assert matched_rank(16, 8, 512, 77) == 7  # 8 x 512 = 4,096 dropped; 7 x (77 + 512) = 4,123
    assert matched_rank(20, 10, 768, 196) == 8  # ept.md's image row: 7,680 dropped, 7,712 added


@pytest.mark.parametrize("variant", ["text", "visual"])
def test_bench_ept_times_three_steps(tmp_path, capsys, plugin_manager, variant):
    import open_clip
    from mmadapt.testing_models import tiny_openclip_config

    (tmp_path / "tiny-bench-ept.json").write_text(json.dumps(tiny_openclip_config()))
    open_clip.add_model_config(tmp_path / "tiny-bench-ept.json")
    argv = ["bench", "ept", "--variant", variant, "--arch", "tiny-bench-ept", "--classes", "5", "--batch-size", "2"]
    assert adapt_command(argv) == 0
    out = capsys.readouterr().out
    budgets = {name: int(value.replace(",", "")) for name, value in re.findall(r"(\w+) +m=.*budget +([\d,]+)", out)}
    assert set(budgets) == {"vanilla", "dept", "ept"}
    assert all(abs(budgets[name] / budgets["vanilla"] - 1) < 0.25 for name in budgets)
    assert re.search(r"ratio vanilla / dept: \d+\.\d+x", out) and re.search(r"ratio vanilla / ept: \d+\.\d+x", out)


def test_bench_ept_refuses_a_short_prompt_as_long_as_the_vanilla_one(capsys, plugin_manager):
    assert adapt_command(["bench", "ept", "--length", "4", "--short", "4"]) == 2
    assert "--short below --length" in capsys.readouterr().err
