"""The primitives on CUDA tensors over NCCL (SPEC §6: Gloo for CPU tensors, NCCL for CUDA ones).

Skipped without a GPU (CI machines have none). With one GPU: a world of one NCCL rank (every
function bypasses; the raw operators return an equal copy on the device) and the random cases at
W = 1. With two or more: W = 2 on a group with both backends ("cpu:gloo,cuda:nccl"), the random
cases of test_graph (graph_cases.run_cases) on CUDA (bitwise equal to the C++ path and to the CPU
reference: at W = 2 a sum has one order) and on the CPU through the same group.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist

from conftest import run_ranks
from graph_cases import Record, assert_adjoint, assert_check, bypass_checks, run_cases

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (CI machines have none)")
needs_two_gpus = pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.device_count() < 2,
    reason="needs two CUDA devices (NCCL puts one rank on each; CI machines have none)",
)


def _nccl_world_of_one(rank: int, w: int) -> dict:
    group = dist.group.WORLD
    rec = Record()
    bypass_checks(None, rec, "None group")
    bypass_checks(group, rec, "NCCL world of one")
    from graphshard.distributed import graph as G

    x = torch.randn(3, 2, device="cuda", requires_grad=True)
    for name, out in {
        "gather": G.gather_tensor(x, 0, [3], group),
        "reduce": G.reduce_tensor(x, group),
        "sync": G.sync_tensor(x, 0, [3], group),
    }.items():
        rec.check("cuda_bypass", out is x, f"{name} on CUDA did not return its input")
    y = torch.ops.graphshard.reduce_tensor(x.detach(), group.group_name)
    rec.check("cuda_bypass", y.is_cuda and torch.equal(y, x.detach()) and y.data_ptr() != x.data_ptr(), "raw op copy")
    run_cases(group, 4242, 40, rec, device="cuda")
    return rec.result()


def _nccl_two(rank: int, w: int) -> dict:
    group = dist.group.WORLD
    cuda, cpu = Record(), Record()
    run_cases(group, 5151, 120, cuda, tag="cuda ", device="cuda")
    run_cases(group, 6161, 40, cpu, tag="cpu ", device="cpu")
    return {"cuda": cuda.result(), "cpu": cpu.result()}


@needs_cuda
def test_nccl_world_of_one():
    (res,) = run_ranks(1, _nccl_world_of_one, timeout=120, backend="cpu:gloo,cuda:nccl")
    for check in ("bypass", "cuda_bypass", "reference", "cxx", "unmodified"):
        assert_check([res], check)
    assert_adjoint([res], 1)


@needs_two_gpus
def test_nccl_two_ranks():
    results = run_ranks(2, _nccl_two, timeout=180, backend="cpu:gloo,cuda:nccl")
    for device in ("cuda", "cpu"):
        part = [r[device] for r in results]
        for check in ("reference", "cxx", "unmodified", "format", "expand"):
            assert_check(part, check)
        assert_adjoint(part, 2)
