"""MMRL's trainable parameters on ViT-B/16 (random weights, no download): the paper's 4.99 M, exactly."""

from __future__ import annotations

import pytest
from mmadapt import Task, random_openclip_backbone
from mmrl_testing import build_mmrl


def mmrl_count(n_tokens: int, dimension: int, image_blocks: int, text_blocks: int, image_width: int,
               text_width: int, embed_dim: int) -> int:
    """R, a Linear(d_r -> width) with bias per block of each tower, and the representation projection."""
    return (n_tokens * dimension + image_blocks * (dimension * image_width + image_width)
            + text_blocks * (dimension * text_width + text_width) + image_width * embed_dim)


@pytest.mark.slow
def test_vit_b16_count_is_the_papers_4_99_million():
    backbone = random_openclip_backbone("ViT-B-16")
    task = Task(["cat", "dog", "sweet pepper"])
    adapter = build_mmrl(backbone, task)  # 5 tokens of 512, blocks 6-12 of both 12-block towers
    groups = {name: sum(p.numel() for p in params) for name, params in adapter.parameter_groups().items()}
    # 2,560 + 7 x 393,984 (512 -> 768) + 7 x 262,656 (512 -> 512) + 393,216 (768 x 512)
    assert groups == {"representation": 2_560 + 2_757_888 + 1_838_592, "projection": 393_216}
    assert adapter.parameter_counts()["trainable"] == 4_992_256 == mmrl_count(5, 512, 7, 7, 768, 512, 512)
    # The official EuroSAT setting, d_r = 2048.
    wide = build_mmrl(backbone, task, dimension=2048)
    assert wide.parameter_counts()["trainable"] == 18_762_496 == mmrl_count(5, 2048, 7, 7, 768, 512, 512)
