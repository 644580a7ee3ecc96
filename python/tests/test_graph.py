"""graphshard.distributed.graph: the seven tensor primitives over Gloo (SPEC §1, §2, §5), on the
world group of W = 2 and 3 ranks.

Each spawn of W ranks runs a few hundred random cases (graph_cases.run_cases: shapes of 1-4 dims,
dims negative too, uneven and zero-size pieces, float32/float64/bfloat16/int64, contiguous,
strided and channels-last inputs, every function) and gradchecks (graph_runs.world_run). Per case
a rank records the checks ``cxx`` (forward and backward bitwise equal to the C++ library's own
autograd functions), ``reference`` (the forward bitwise equal to a single-process reference),
``unmodified``, ``format`` and ``expand``, and for float64 cases its local inner products, which
the parent combines over ranks to check that each backward is the adjoint of its forward.

The same checks at W = 4, model subgroups, one-rank groups, None and a world of one rank:
test_graph_subgroups.py (a spawn costs seconds: the spawns are spread over two files, each with its
own time limit).
"""

from __future__ import annotations

import pytest

from graph_cases import assert_adjoint, assert_check
from graph_runs import world_results


@pytest.fixture(params=[2, 3], ids=lambda w: f"W{w}")
def world(request):
    return request.param, world_results(request.param)


@pytest.mark.parametrize("check", ["reference", "cxx", "unmodified", "format", "view", "expand"])
def test_primitives(world, check):
    """(a) bitwise equal to the C++ autograd path; (b) forward == single-process reference;
    (d) inputs unmodified; outputs keep the memory format; shard_tensor's view where the piece is
    already contiguous; the expand backward."""
    w, results = world
    assert_check(results, check, min_cases=5)


def test_adjoint(world):
    """(b) every backward is the adjoint of its forward (float64, SPEC §1 inner products)."""
    w, results = world
    assert_adjoint(results, w)


def test_gradcheck(world):
    """(c) gradcheck of gather_tensor, reduce_tensor and the expand backward of shard_tensor."""
    w, results = world
    assert_check(results, "gradcheck", min_cases=7 * w)

