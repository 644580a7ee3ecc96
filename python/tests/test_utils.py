"""graphshard.distributed.utils (SPEC §4): model_is_distributed, get_memory_format."""

from __future__ import annotations

import torch

from conftest import run_ranks
from graphshard.distributed.utils import get_memory_format
from graphshard.distributed.utils import model_is_distributed


def test_model_is_distributed_none():
    assert model_is_distributed(None) is False
    assert model_is_distributed() is False


def test_get_memory_format():
    x = torch.empty(2, 3, 4, 5)
    assert get_memory_format(x) is torch.contiguous_format
    cl = x.contiguous(memory_format=torch.channels_last)
    assert get_memory_format(cl) is torch.channels_last
    # Contiguous in both (channels of extent 1): channels-last is tested first and wins.
    both = torch.empty(2, 1, 4, 5)
    assert both.is_contiguous() and both.is_contiguous(memory_format=torch.channels_last)
    assert get_memory_format(both) is torch.channels_last
    # Neither: contiguous format (what the primitives then produce).
    strided = x.transpose(1, 2)
    assert not strided.is_contiguous() and not strided.is_contiguous(memory_format=torch.channels_last)
    assert get_memory_format(strided) is torch.contiguous_format
    # Fewer than 4 dims can never be channels-last.
    assert get_memory_format(torch.empty(3, 4)) is torch.contiguous_format
    assert get_memory_format(torch.empty(3, 4).t()) is torch.contiguous_format


def _groups(rank, w):
    import torch.distributed as dist

    pair = [dist.new_group([0, 1]), dist.new_group([2])] if w == 3 else None
    singles = [dist.new_group([q]) for q in range(w)]
    return {
        "world": model_is_distributed(dist.group.WORLD),
        "single": model_is_distributed(singles[rank]),
        "pair": model_is_distributed(pair[0 if rank < 2 else 1]),
        "none": model_is_distributed(None),
    }


def test_model_is_distributed_groups():
    res = run_ranks(3, _groups, timeout=60)
    assert [r["world"] for r in res] == [True, True, True]
    assert [r["single"] for r in res] == [False, False, False]
    assert [r["pair"] for r in res] == [True, True, False]
    assert [r["none"] for r in res] == [False, False, False]
