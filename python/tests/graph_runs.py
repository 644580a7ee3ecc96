"""The rank functions of the graph-primitive tests, and the parent's cache of their spawns.

``world_run`` (the random cases of graph_cases.run_cases and gradchecks on the world group; at
W = 4 also the subgroup stage, in the same spawn), ``subgroup_run`` and ``world_of_one`` run on
spawned ranks (conftest.run_ranks imports this module there). ``world_results(w)`` spawns a world
of w ranks once per test process and hands its results to every test that asks: test_graph.py
(W = 2, 3) and test_graph_subgroups.py (W = 4 with its subgroups).
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from conftest import run_ranks, tensor
from graph_cases import SEED, Record, bypass_checks, run_cases


# ---- one rank's run ------------------------------------------------------------------------------


def gradchecks(group, rec: Record):
    """(c) gradcheck in float64 of the primitives whose LOCAL Jacobian is their backward.

    gather_tensor: output = cat of all pieces; d output / d (own piece) selects piece r, whose
    transpose keeps piece r of the gradient: its backward. reduce_tensor: d sum / d x_r = I, the
    transpose of which is its backward (identity). shard_tensor(gather_in_backward=False) too: the
    local Jacobian selects piece r, its transpose is the expand backward (and it communicates
    in neither direction).

    The others do not qualify: their backward is the adjoint under the GLOBAL inner products
    (SPEC §1), so it includes other ranks' contributions that a finite difference of one rank's
    input cannot see. shard_tensor (gathering backward) returns the full gradient of a replicated
    input, whose other pieces are the other ranks' upstream gradients; sync_tensor's backward
    all-reduces the per-rank partial gradients; reduce_shard_tensor's backward all-gathers the
    pieces (a partial input's gradient involves every rank's output piece); all_to_all_transpose's
    backward routes gradient pieces from the other ranks. Those are checked by the adjoint
    identity instead.

    The finite differences must perturb one rank's input only, so one rank at a time (the
    "active" one) runs gradcheck while the others serve its collectives with a fixed input: before
    each forward call the active rank broadcasts 1 (call) or, when done, 0 (stop).
    """
    from graphshard.distributed import graph as G

    r, w = group.rank(), group.size()
    cases = [
        ("gather", (2, 3), 0),
        ("gather", (3, 2), -1),
        ("gather", (2, 1, 2), 1),
        ("reduce", (2, 3), 0),
        ("reduce", (4,), 0),
        ("shard_expand", (2 * w, 2), 0),
        ("shard_expand", (2, w), -1),
    ]
    for fn, shape, d in cases:
        if fn == "gather":
            sizes = [shape[d]] * w

            def f(t, d=d, sizes=sizes):
                return G.gather_tensor(t, d, sizes, group)
        elif fn == "reduce":

            def f(t):
                return G.reduce_tensor(t, group)
        else:
            sizes = [shape[d] // w] * w

            def f(t, d=d, sizes=sizes):
                return G.shard_tensor(t, d, sizes, group, gather_in_backward=False)

        x = tensor(1000 + 17 * r + len(shape), shape, torch.float64)
        if fn == "shard_expand":  # no communication at all: every rank checks at once
            ok = torch.autograd.gradcheck(f, (x.clone().requires_grad_(True),), raise_exception=False)
            rec.check("gradcheck", ok, f"gradcheck {fn}{shape} dim {d} rank {r}")
            continue
        for active in range(w):
            src = dist.get_global_rank(group, active)
            flag = torch.zeros(1, dtype=torch.int64)
            if r == active:

                def announced(t, f=f, src=src):
                    dist.broadcast(torch.ones(1, dtype=torch.int64), src=src, group=group)
                    return f(t)

                try:
                    ok = torch.autograd.gradcheck(announced, (x.clone().requires_grad_(True),))
                    msg = ""
                except Exception as e:  # noqa: BLE001 - reported to the parent
                    ok, msg = False, f"{type(e).__name__}: {e}"
                dist.broadcast(flag, src=src, group=group)
                rec.check("gradcheck", ok, f"gradcheck {fn}{shape} dim {d} rank {r}: {msg}")
            else:
                while True:
                    dist.broadcast(flag, src=src, group=group)
                    if flag.item() == 0:
                        break
                    with torch.no_grad():
                        f(x)


def world_run(rank: int, w: int, seed: int, n_cases: int, sub_cases: int = 0) -> dict:
    """The world's cases and gradchecks; at W = 4 also the subgroup stage (one spawn)."""
    rec = Record()
    run_cases(dist.group.WORLD, seed, n_cases, rec)
    gradchecks(dist.group.WORLD, rec)
    out = rec.result()
    if sub_cases:
        out["sub"] = subgroup_run(rank, w, seed + 100, sub_cases)
    return out


def world_of_one(rank: int, w: int) -> dict:
    rec = Record()
    bypass_checks(None, rec, "None group")
    bypass_checks(dist.group.WORLD, rec, "world of one")
    # The random cases too: every function bypasses (the input comes back) and so does its
    # backward; the references and the C++ path agree.
    run_cases(dist.group.WORLD, SEED + 1, 60, rec)
    return rec.result()


def subgroup_run(rank: int, w: int, seed: int, n_cases: int) -> dict:
    """(e) W = 4 split into model groups [0, 1] and [2, 3]; (f) one-rank groups."""
    pairs = [dist.new_group([0, 1]), dist.new_group([2, 3])]  # every rank creates both, in order
    singles = [dist.new_group([q]) for q in range(w)]
    mine = pairs[rank // 2]
    rec = Record()
    assert mine.size() == 2 and mine.rank() == rank % 2
    # Each group draws its own cases (its own seed); the reference rebuilds them within the group.
    run_cases(mine, seed + 1000 * (rank // 2), n_cases, rec, tag=f"group {rank // 2} ")
    # The world group still works after both pairs ran concurrently.
    t = torch.tensor([float(rank)])
    dist.all_reduce(t)
    rec.check("world", t.item() == sum(range(w)), f"world all-reduce after subgroups: {t}")
    bypass_checks(singles[rank], rec, f"one-rank group [{rank}]")
    bypass_checks(None, rec, "None group")
    return rec.result()


# ---- the parent's side ---------------------------------------------------------------------------

N_CASES = {2: 200, 3: 120, 4: 80}
SUB_CASES = 80
_RUNS: dict = {}


def world_results(w: int):
    """One spawn per world size for the whole test process (its results feed several tests)."""
    if w not in _RUNS:
        try:
            _RUNS[w] = run_ranks(w, world_run, SEED + w, N_CASES[w], SUB_CASES if w == 4 else 0, timeout=150)
        except BaseException as e:  # every test of this world fails with it, without a rerun
            _RUNS[w] = e
    if isinstance(_RUNS[w], BaseException):
        raise _RUNS[w]
    return _RUNS[w]
