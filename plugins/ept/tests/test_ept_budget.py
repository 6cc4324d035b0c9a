"""The parameter budget of ept.md: per-part counts, the decomposed budget (prompt + low-rank) and the
EPT extras reported apart, as ``parameter_counts()`` gives them to summary.json."""

from __future__ import annotations

import pytest
import torch
from mmadapt_ept.config import EptConfig
from mmadapt_ept.parts import EptParts


def part_counts(length: int, width: int, m: int, rank: int) -> dict[str, int]:
    return EptParts(EptConfig(rank=rank), length, width).counts(m * width)


@pytest.mark.parametrize(
    ("length", "width", "m", "rank", "prompt", "low_rank", "total"),
    [
        (256, 768, 40, 45, 30_720, 46_080, 129_028),  # T5-style, DePT's budget
        (77, 512, 4, 8, 2_048, 4_712, 41_580),  # CLIP ViT-B/16 text
        (196, 768, 10, 8, 7_680, 7_712, 67_620),  # CLIP ViT-B/16 image
    ],
)
def test_budget_table_of_the_spec(length, width, m, rank, prompt, low_rank, total):
    counts = part_counts(length, width, m, rank)
    projection, gate = 2 * 4 * width * 8, 4 * width + 4
    assert counts == {
        "prompt": prompt, "low_rank": low_rank, "fusion": 0, "projection": projection, "gate": gate,
        "decomposed_budget": prompt + low_rank, "ept_extras": projection + gate,
    }
    assert counts["decomposed_budget"] + counts["ept_extras"] == total


def test_dept_budget_equals_a_100_token_prompt():
    assert part_counts(256, 768, 40, 45)["decomposed_budget"] == 76_800 == 100 * 768
    for m, rank in [(60, 30), (80, 15)]:
        assert part_counts(256, 768, m, rank)["decomposed_budget"] == 76_800


def test_switched_off_parts_count_zero(backbone, make_adapter):
    counts = make_adapter("ept", backbone, projection=False, rank=0).parameter_counts()
    assert counts["projection"] == counts["gate"] == counts["low_rank"] == 0
    assert counts["trainable"] == counts["prompt"] == counts["decomposed_budget"]


def test_clip_text_row_through_the_adapter():
    """The adapter at ViT-B/16's text width and 77 positions counts exactly the table's text row."""
    from mmadapt import OpenClipBackbone, Task
    from mmadapt.testing_models import tiny_openclip_config
    from mmadapt_ept.text import Ept
    from open_clip.model import CLIP

    config = tiny_openclip_config()
    config["text_cfg"].update(width=512, heads=8, layers=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        wide = OpenClipBackbone(CLIP(**config), name="openclip text width 512")
    counts = Ept(EptConfig(init="a photo of a"), wide, Task(["dog", "cat"])).parameter_counts()
    assert (counts["prompt"], counts["low_rank"], counts["projection"], counts["gate"]) == (2_048, 4_712, 32_768, 2_052)
    assert counts["trainable"] == 41_580 and counts["total"] > counts["trainable"]


def test_visual_counts_add_up(backbone, make_adapter):
    counts = make_adapter("ept-visual", backbone, n_ctx=10, rank=8).parameter_counts()
    width, n = backbone.image.width, make_adapter("ept-visual", backbone).n_patches
    assert counts["low_rank"] == n * 8 + 8 * width and counts["prompt"] == 10 * width
    assert counts["trainable"] == counts["decomposed_budget"] + counts["ept_extras"] + counts["head"]
