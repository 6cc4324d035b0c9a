"""``train.exact_shards``: whole shards per process in shard order, the batch's gradient, clear refusals.

That N processes give the one-process bits is the multi-process matrix's check (tests/test_processes.py).
"""

from __future__ import annotations

import pytest
import torch
from mmadapt.errors import UserError
from mmadapt.exact_shards import ShardGradients, local_shards, refuse_batch_statistics
from mmadapt.fitting import check_batch_split
from mmadapt.sampling import GlobalBatchSampler
from test_engine import lora_weights


@pytest.mark.parametrize(("size", "shards", "world"), [(8, 4, 1), (8, 4, 2), (8, 4, 4), (12, 6, 3), (12, 2, 2),
                                                        (4, 4, 2)])
def test_each_process_holds_whole_shards_and_knows_their_numbers(size, shards, world):
    shard_items = {k: list(range(k, size, shards)) for k in range(shards)}  # shard k: items k, k + K, ...
    for rank in range(world):
        (share,) = GlobalBatchSampler(size, size, shuffle=False, seed=0, rank=rank, world=world)
        for q, positions in enumerate(local_shards(len(share), shards, world)):
            # ShardGradients files row q of process `rank` as shard rank + q * world.
            assert [share[p] for p in positions] == shard_items[rank + q * world]


def test_the_shard_gradients_are_summed_in_shard_order_and_averaged():
    weight = torch.nn.Parameter(torch.zeros(3))
    gradients = ShardGradients([weight], shards=3, num_processes=1)
    for value in (1e8, 1.0, -1e8):  # float addition in another order would lose the 1
        weight.grad = torch.full((3,), value)
        gradients.keep()
        assert weight.grad is None
    gradients.add_to_grads(divisor=3)
    assert torch.equal(weight.grad, ((torch.full((3,), 1e8) + 1.0) - 1e8) / 3)


def test_shards_train_on_the_batch_gradient(tiny_plugin, tmp_path):
    whole = lora_weights(tmp_path / "whole", batch_size=16)
    sharded = lora_weights(tmp_path / "sharded", batch_size=16, exact_shards=4)
    accumulated = lora_weights(tmp_path / "accumulated", batch_size=8, grad_accum=2, exact_shards=2)
    assert any(not torch.equal(whole[name], sharded[name]) for name in whole)  # another order of the sums
    for name in whole:
        torch.testing.assert_close(sharded[name], whole[name], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(accumulated[name], whole[name], atol=1e-6, rtol=1e-5)


def test_batches_and_process_counts_that_do_not_split_into_the_shards_are_refused():
    check_batch_split("train", 32, 8, num_processes=2, shards=4)
    with pytest.raises(UserError, match=r"batch size is 6, which does not split into train.exact_shards=4 shards"):
        check_batch_split("train", 32, 6, num_processes=1, shards=4)
    with pytest.raises(UserError, match=r"its 10 items make one batch of 10"):
        check_batch_split("train", 10, 16, num_processes=1, shards=4)
    with pytest.raises(UserError, match=r"train.exact_shards=4 does not split over 3 processes"):
        check_batch_split("train", 36, 12, num_processes=3, shards=4)


def test_running_batch_statistics_are_refused_in_training_only():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    with pytest.raises(UserError, match=r"module 1 \(BatchNorm2d\) trains with running batch statistics"):
        refuse_batch_statistics(model.train())
    refuse_batch_statistics(model.eval())


def test_exact_passes_give_each_process_whole_batches():
    one = list(GlobalBatchSampler(10, 4, shuffle=False, seed=0))
    ranks = [GlobalBatchSampler(10, 4, shuffle=False, seed=0, rank=rank, world=2, whole_batches=True)
             for rank in range(2)]
    assert [list(sampler) for sampler in ranks] == [[one[0], one[2]], [one[1]]]
    assert [len(sampler) for sampler in ranks] == [2, 1]
