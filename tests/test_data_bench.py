"""`adapt bench data`: both loops read every image of the folder in batches of the same transform; our
loop yields the very tensors torchvision's does (same files, order and crops)."""

from __future__ import annotations

import torch
from mmadapt.backbone import Preprocessing
from mmadapt.builtin.data_bench import (
    CLIP_MEAN,
    CLIP_STD,
    our_batches,
    torchvision_batches,
    write_image_folder,
)
from mmadapt.data import build_transforms
from mmadapt.testing import adapt_command


def test_our_loop_yields_torchvisions_batches(tmp_path):
    root = write_image_folder(tmp_path, images=12, side=48, classes=3)
    train, _ = build_transforms(Preprocessing(32, CLIP_MEAN, CLIP_STD), "crop-flip")
    (ours, count), (theirs, their_count) = (build(root, train, 5, 0) for build in (our_batches, torchvision_batches))
    assert count == their_count == 12
    torch.manual_seed(0)
    our_list = list(ours)
    torch.manual_seed(0)
    their_list = list(theirs)
    assert [len(b["index"]) for b in our_list] == [len(b[0]) for b in their_list] == [5, 5, 2]
    for batch, (images, labels) in zip(our_list, their_list):
        assert torch.equal(batch["image"], images) and torch.equal(batch["label"], labels)


def test_bench_data_prints_both_loops_per_worker_count(capsys):
    assert adapt_command(["bench", "data", "--images", "8", "--side", "40", "--batch-size", "4", "--workers", "0",
                          "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "0 workers: ours" in out and "torchvision" in out
    assert "ratio ours / torchvision images/s, 0 workers (median of rounds):" in out
