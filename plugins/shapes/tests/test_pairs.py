"""Pretraining pairs: shape groups and determinism."""

import numpy as np
import pytest
from mmadapt_shapes.pairs import GROUP_SIZE, pretrain_batch, sample_group, sample_pair, with_shapes


def test_group_scenes_differ_only_in_shape():
    for g in range(30):
        group = sample_group(0, 1000, g)
        assert len(group) == GROUP_SIZE
        scenes = [scene for scene, _ in group]
        assert len({s.shapes for s in scenes}) == GROUP_SIZE
        for scene in scenes[1:]:
            assert with_shapes(scene, scenes[0].shapes) == scenes[0]


def test_pretrain_batch_is_deterministic():
    a_img, a_txt, a_lab = pretrain_batch(3, 8, seed=1)
    b_img, b_txt, b_lab = pretrain_batch(3, 8, seed=1)
    assert np.array_equal(a_img, b_img) and a_txt == b_txt and np.array_equal(a_lab, b_lab)
    assert a_lab.shape == (8, 12) and (a_lab.sum(1) >= 1).all()
    c_img, _, _ = pretrain_batch(4, 8, seed=1)
    assert not np.array_equal(a_img, c_img)
    with pytest.raises(ValueError, match="multiple"):
        pretrain_batch(0, 6, seed=1)


def test_sample_pair_is_deterministic():
    assert sample_pair(0, 5, 9) == sample_pair(0, 5, 9)
    assert sample_pair(0, 5, 9) != sample_pair(0, 5, 10)
