"""Process groups as the operators see them (core/ops/group.cpp): graphshard holds no group's
backend between calls, so destroy_process_group releases the transport as it does without
graphshard (a backend kept past it keeps Gloo's threads running into the interpreter's
finalization, where one of them can abort the process at exit). The CommError of a collective
on a destroyed group is checked in C++ (props/comm/c10d_communicator_test.cpp)."""

from __future__ import annotations

import gc
import os

import pytest
import torch
import torch.distributed as dist

from conftest import run_ranks
from graphshard.distributed import graph as G


def _threads():
    return len(os.listdir("/proc/self/task"))


def _threads_left_by_a_group(use):
    """Threads of this process after a new Gloo group was used (use(group)) and destroyed,
    minus those before it was made."""
    before = _threads()
    group = dist.new_group(backend="gloo")
    assert _threads() > before  # the check below can see a group's threads at all
    use(group)
    dist.barrier(group)
    dist.destroy_process_group(group)
    del group
    gc.collect()
    return _threads() - before


def _release(rank, w):
    x = torch.full((4, 3), float(rank + 1))
    torch_only = _threads_left_by_a_group(lambda g: dist.all_reduce(x.clone(), group=g))
    with_graphshard = _threads_left_by_a_group(lambda g: G.reduce_tensor(x, g))
    return torch_only, with_graphshard


def test_destroying_a_group_releases_its_transport():
    for torch_only, with_graphshard in run_ranks(2, _release):
        assert torch_only == 0, "control: torch.distributed alone left threads of a destroyed group"
        assert with_graphshard == 0, "graphshard kept a destroyed group's backend (and its threads)"
