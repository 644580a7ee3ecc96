"""graphshard.distributed.graph at W = 4: the world group, model subgroups and one-rank groups
(SPEC §2, §5), in one spawn of four ranks (graph_runs.world_run); None and a world of one rank.

The world group first: the random cases of graph_cases.run_cases and gradchecks, the same checks
as test_graph.py's at W = 2 and 3. Then (e) the world split into model groups [0, 1] and [2, 3]:
both pairs run random cases concurrently (``reference``, ``cxx``, ``unmodified``, ``format``
and the adjoint within each pair), and the world group still works after them; (f) a one-rank
subgroup and None: every function returns its input itself (and the raw operators an equal copy).
A world of one rank (graph_runs.world_of_one): its WORLD group and None bypass, and the random
cases bypass too, agreeing with the reference and the C++ path.
"""

from __future__ import annotations

import pytest

from conftest import run_ranks
from graph_cases import assert_adjoint, assert_check
from graph_runs import world_of_one, world_results


@pytest.fixture(params=[4], ids=lambda w: f"W{w}")
def world(request):
    return request.param, world_results(request.param)


@pytest.fixture
def subgroups():
    return [res["sub"] for res in world_results(4)]


@pytest.mark.parametrize("check", ["reference", "cxx", "unmodified", "format", "expand"])
def test_primitives(world, check):
    """(a) bitwise equal to the C++ autograd path; (b) forward == single-process reference;
    (d) inputs unmodified; outputs keep the memory format; the expand backward."""
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


@pytest.mark.parametrize("check", ["reference", "cxx", "unmodified", "format", "world"])
def test_subgroups(subgroups, check):
    """(e) the primitives on model groups [0, 1] and [2, 3] of a W = 4 world."""
    assert_check(subgroups, check, min_cases=4)


def test_subgroups_adjoint(subgroups):
    # Both groups ran cases with the same tags apart from the group: combine within each group.
    for g in (0, 1):
        rows = [
            {"adjoint": [a for a in res["adjoint"] if a[0].startswith(f"group {g} ")]}
            for res in subgroups[2 * g : 2 * g + 2]
        ]
        assert_adjoint(rows, 2)


def test_one_rank_and_none_groups(subgroups):
    """(f) a one-rank subgroup and None: every function returns its input itself."""
    assert_check(subgroups, "bypass", min_cases=4 * 2 * 10)


def test_world_of_one():
    """(f) a world of one rank (its WORLD group) and None; (a), (b), (d) at W = 1."""
    (res,) = run_ranks(1, world_of_one, timeout=60)
    assert_check([res], "bypass", min_cases=2 * 2 * 10)
    for check in ("reference", "cxx", "unmodified", "expand"):
        assert_check([res], check)
    assert_adjoint([res], 1)
