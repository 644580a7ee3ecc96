"""Bad input and faults (SPEC §5, §6): argument errors are ValueError with graphshard's message
on every rank, before any communication; a dead peer makes the survivors raise
graphshard.CommError naming it, within the group's timeout; checked mode; and the harness
itself (a hang fails the test, never blocks it)."""

from __future__ import annotations

import os
import re
import time

import pytest
import torch
import torch.distributed as dist

import graphshard
from conftest import RankError, run_ranks
from graphshard.distributed import graph as G
from graphshard.distributed import khop_edges as K
from graphshard.distributed.shapes import BipartiteGraphShardInfo
from graphshard.distributed.shapes import get_shard_sizes

MESSAGE = re.compile(
    r"^graphshard::(?P<fn>[\w:]+): (?P<arg>[^:]+): expected (?P<expected>.+?), got (?P<got>.+) \(rank (?P<rank>\d+)\)$",
    re.S,
)


def _x(*shape, grad=False):
    return torch.ones(*shape, requires_grad=grad)


def _unsorted_edges():
    return torch.ones(4, 2), torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]])


def _partition_of(parts):
    ei = torch.tensor([[0, 1, 2, 3], [0, 1, 2, 3]])
    return K.build_graph_partition(ei, parts, (4, 4)), ei


def _double_backward(g, w):
    x = _x(2 * w, 2, grad=True)
    y = G.shard_tensor(x, 0, [2] * w, g)
    (y * y).sum().backward(create_graph=True)


# id -> (function named in the message, argument named, the bad call). Every rank makes the same
# bad call, so every rank must detect it (SPEC §5: checks depend only on what every rank has).
# `r` is the rank, `w` the group size, `g` the group.
CATALOGUE = {
    "shard dim too large": ("shard_tensor", r"dim", lambda r, w, g: G.shard_tensor(_x(4, 3), 2, [2] * (w - 1) + [4 - 2 * (w - 1)], g)),
    "shard dim too negative": ("shard_tensor", r"dim", lambda r, w, g: G.shard_tensor(_x(4, 3), -3, [1] * w, g)),
    "shard sizes length": ("shard_tensor", r"sizes length", lambda r, w, g: G.shard_tensor(_x(4, 3), 0, [4], g)),
    "shard sizes sum": ("shard_tensor", r"sizes", lambda r, w, g: G.shard_tensor(_x(4, 3), 0, [1] * w, g)),
    "shard sizes None": ("shard_tensor", r"sizes", lambda r, w, g: G.shard_tensor(_x(4, 3), 0, None, g)),
    "shard negative size": ("shard_tensor", r"sizes", lambda r, w, g: G.shard_tensor(_x(4, 3), 0, [5, -1] + [0] * (w - 2), g)),
    "shard int dim 1-d": ("shard_tensor", r"dim", lambda r, w, g: G.shard_tensor(torch.arange(4), 1, [4] + [0] * (w - 1), g)),
    "gather local size": ("gather_tensor", r"sizes\[\d\]", lambda r, w, g: G.gather_tensor(_x(4, 3), 0, [3] * w, g)),
    "gather dim": ("gather_tensor", r"dim", lambda r, w, g: G.gather_tensor(_x(4, 3), 2, [4] * w, g)),
    "gather sizes None": ("gather_tensor", r"sizes", lambda r, w, g: G.gather_tensor(_x(4, 3), 0, None, g)),
    "gather sizes length": ("gather_tensor", r"sizes length", lambda r, w, g: G.gather_tensor(_x(4, 3), 0, [4] * (w + 1), g)),
    "sync local size": ("sync_tensor", r"sizes\[\d\]", lambda r, w, g: G.sync_tensor(_x(4, 3), -2, [2] * w, g)),
    "reduce_shard sum": ("reduce_shard_tensor", r"sizes", lambda r, w, g: G.reduce_shard_tensor(_x(4, 3), 1, [1] * w, g)),
    "reduce_shard sizes None": ("reduce_shard_tensor", r"sizes", lambda r, w, g: G.reduce_shard_tensor(_x(4, 3), 1, None, g)),
    "a2a same dims": ("all_to_all_transpose", r"dim_concat", lambda r, w, g: G.all_to_all_transpose(_x(4, 3), 1, [3] + [0] * (w - 1), -1, [3] * w, g)),
    "a2a split sum": ("all_to_all_transpose", r"split_sizes", lambda r, w, g: G.all_to_all_transpose(_x(4, 3), 0, [1] * w, 1, [3] * w, g)),
    "a2a concat local": ("all_to_all_transpose", r"concat_sizes\[\d\]", lambda r, w, g: G.all_to_all_transpose(_x(4, 3), 0, [2] * (w - 1) + [4 - 2 * (w - 1)], 1, [2] * w, g)),
    "a2a split length": ("all_to_all_transpose", r"split_sizes length", lambda r, w, g: G.all_to_all_transpose(_x(4, 3), 0, [4], 1, [3] * w, g)),
    "a2a dim range": ("all_to_all_transpose", r"dim_split", lambda r, w, g: G.all_to_all_transpose(_x(4, 3), 5, [4] + [0] * (w - 1), 1, [3] * w, g)),
    "ensure_sharded local": ("ensure_sharded", r"shard_sizes\[\d\]", lambda r, w, g: G.ensure_sharded(_x(4, 3), 0, [3] * w, g)),
    "ensure_sharded length": ("ensure_sharded", r"shard_sizes length", lambda r, w, g: G.ensure_sharded(_x(4, 3), 0, [4] * (w + 1), g)),
    "ensure_sharded None group": ("ensure_sharded", r"shard_sizes\[0\]", lambda r, w, g: G.ensure_sharded(_x(4, 3), 0, [3], None)),
    "get_shard_sizes dim": ("get_shard_sizes", r"dim", lambda r, w, g: get_shard_sizes(_x(4, 3), -3, g)),
    "double backward": ("shard_tensor", r"backward", lambda r, w, g: _double_backward(g, w)),
    "sort sharded edges": (
        "ensure_edges_are_dst_sorted",
        r"\w+",
        lambda r, w, g: K.ensure_edges_are_dst_sorted(
            *_unsorted_edges(), num_dst=4, edges_are_sharded=True, model_comm_group=g, edges_are_dst_sorted=False
        ),
    ),
    "shard_edges ids": ("shard_edges_1hop", r"\w+", lambda r, w, g: K.shard_edges_1hop(*_unsorted_edges(), 4, 2, g, False)),
    "to_local parts": (
        "shard_graph_to_local",
        r"[\w.]+",
        lambda r, w, g: K.shard_graph_to_local(
            _partition_of(w + 1)[0], (_x(4, 2), _x(4, 2)), _x(4, 2), _partition_of(w + 1)[1], BipartiteGraphShardInfo(), g
        ),
    ),
}


def argument_errors(rank: int, w: int) -> dict:
    group = dist.group.WORLD
    out = {}
    for name, (_, _, bad) in CATALOGUE.items():
        t = time.monotonic()
        try:
            bad(rank, w, group)
            err = None
        except BaseException as e:  # noqa: BLE001 - examined by the parent
            err = (type(e).__name__, str(e))
        elapsed = time.monotonic() - t
        # Nobody is left inside a collective: the next good one works and agrees.
        y = G.gather_tensor(torch.tensor([float(rank)]), 0, [1] * w, group)
        in_sync = torch.equal(y, torch.arange(w, dtype=torch.float32))
        out[name] = (err, elapsed, in_sync)
    return out


_ARG_RUN: dict = {}


def _argument_results():
    if "res" not in _ARG_RUN:
        try:
            _ARG_RUN["res"] = run_ranks(2, argument_errors, timeout=60, group_timeout=10)
        except BaseException as e:  # every case fails with it, without a rerun
            _ARG_RUN["res"] = e
    if isinstance(_ARG_RUN["res"], BaseException):
        raise _ARG_RUN["res"]
    return _ARG_RUN["res"]


@pytest.mark.parametrize("case", list(CATALOGUE))
def test_argument_error(case):
    fn, arg, _ = CATALOGUE[case]
    for rank, res in enumerate(_argument_results()):
        err, elapsed, in_sync = res[case]
        assert err is not None, f"rank {rank}: no error raised"
        kind, msg = err
        assert kind == "ValueError", f"rank {rank}: {kind}: {msg}"
        m = MESSAGE.match(msg)
        assert m, f"rank {rank}: message not in graphshard's form: {msg!r}"
        assert m["fn"].split("::")[0] == fn, f"rank {rank}: names {m['fn']}, expected {fn}: {msg}"
        assert re.fullmatch(arg, m["arg"]), f"rank {rank}: argument {m['arg']!r}, expected {arg}: {msg}"
        # A None group is a world of one: rank 0 (SPEC §2, ensure_sharded).
        want_rank = 0 if case.endswith("None group") else rank
        assert int(m["rank"]) == want_rank, f"rank {rank}: message names rank {m['rank']}: {msg}"
        assert elapsed < 5, f"rank {rank}: {elapsed:.1f} s to fail (waited on a peer?)"
        assert in_sync, f"rank {rank}: the ranks are out of step after the error"


def test_argument_errors_single_process():
    """The same form without a group: graph functions on out-of-range ids, a bad partition id.
    (build_graph_partition checks the first and last destination only: sortedness is checked in
    debug mode, SPEC §3.)"""
    ei = torch.tensor([[0, 5], [0, 1]])
    cases = [
        ("drop_unconnected_src_nodes", lambda: K.drop_unconnected_src_nodes(torch.ones(3, 1), ei, (3, 2))),
        ("sort_edge_index_by_dst", lambda: K.sort_edge_index_by_dst(ei, 1)),
        ("build_graph_partition", lambda: K.build_graph_partition(torch.tensor([[0, 0], [0, 2]]), 2, (2, 2))),
        ("GraphPartition::materialise", lambda: K.build_graph_partition(ei, 2, (6, 2)).materialise(2, (torch.ones(6, 1), torch.ones(2, 1)), torch.ones(2, 1), ei)),
        ("sort_edges_1hop_chunks", lambda: K.sort_edges_1hop_chunks(3, torch.ones(2, 1), ei, 2)),
    ]
    cases.append(
        (
            "GraphPartition::materialise",
            lambda: K.build_graph_partition(torch.tensor([[0, 7], [0, 1]]), 2, (6, 2)).materialise(
                1, (torch.ones(6, 1), torch.ones(2, 1)), torch.ones(2, 1), torch.tensor([[0, 7], [0, 1]])
            ),
        )
    )
    for fn, bad in cases:
        with pytest.raises(ValueError) as info:
            bad()
        m = MESSAGE.match(str(info.value))
        assert m and m["fn"] == fn and m["rank"] == "0", str(info.value)


# ---- a dead peer ---------------------------------------------------------------------------------

GROUP_TIMEOUT = 5


def _dies_in_forward(rank: int, w: int) -> dict:
    group = dist.group.WORLD
    x = torch.full((3, 2), float(rank))
    G.gather_tensor(x, 0, [3] * w, group)  # the group works
    dist.barrier()
    if rank == w - 1:
        time.sleep(0.2)  # the others are inside the next collective
        os._exit(0)
    t = time.monotonic()
    try:
        G.gather_tensor(x, 0, [3] * w, group)
    except BaseException as e:  # noqa: BLE001
        return dict(
            classes=[c.__name__ for c in type(e).__mro__],
            is_comm_error=isinstance(e, graphshard.CommError),
            is_runtime_error=isinstance(e, RuntimeError),
            is_dist_backend_error=isinstance(e, torch.distributed.DistBackendError),
            op=getattr(e, "op", None),
            rank=getattr(e, "rank", None),
            peers=getattr(e, "peers", None),
            message=str(e),
            elapsed=time.monotonic() - t,
        )
    return dict(error=None)


def test_dead_peer_in_forward():
    w = 3
    t = time.monotonic()
    res = run_ranks(w, _dies_in_forward, timeout=60, group_timeout=GROUP_TIMEOUT, expect_exit={w - 1})
    assert res[w - 1] is None  # it died without a result
    for rank, r in enumerate(res[: w - 1]):
        assert r.get("error", 1) is not None, f"rank {rank}: the collective with a dead peer succeeded"
        assert r["is_comm_error"] and r["is_runtime_error"] and r["is_dist_backend_error"], r["classes"]
        assert r["rank"] == rank, r
        assert r["peers"] == [w - 1], r
        assert isinstance(r["op"], str) and r["op"], r
        assert r["elapsed"] < GROUP_TIMEOUT + 5, f"rank {rank}: {r['elapsed']:.1f} s to fail"
    assert time.monotonic() - t < 60


def _dies_before_backward(rank: int, w: int) -> dict:
    group = dist.group.WORLD
    x = torch.ones(2 * w, 3, requires_grad=True)
    y = G.shard_tensor(x, 0, [2] * w, group)  # forward: no communication; backward: a gather
    dist.barrier()
    if rank == w - 1:
        time.sleep(0.2)
        os._exit(0)
    t = time.monotonic()
    try:
        y.backward(torch.ones_like(y))
    except BaseException as e:  # noqa: BLE001
        c = graphshard.CommError.from_exception(e)
        return dict(
            is_dist_backend_error=isinstance(e, torch.distributed.DistBackendError),
            recovered=None if c is None else (type(c).__name__, c.op, c.rank, c.peers, isinstance(c, RuntimeError)),
            same=graphshard.CommError.from_exception(c) is c if c is not None else None,
            unrelated=graphshard.CommError.from_exception(RuntimeError("something else")),
            message=str(e),
            elapsed=time.monotonic() - t,
        )
    return dict(error=None)


def test_dead_peer_in_backward():
    w = 2
    res = run_ranks(w, _dies_before_backward, timeout=60, group_timeout=GROUP_TIMEOUT, expect_exit={w - 1})
    r = res[0]
    assert r.get("error", 1) is not None, "the backward with a dead peer succeeded"
    assert r["is_dist_backend_error"], r["message"]
    assert r["recovered"] is not None, f"CommError.from_exception found no tag in: {r['message']}"
    kind, op, rank, peers, is_runtime = r["recovered"]
    assert kind in ("CommError", "CommTimeout") and op and rank == 0 and peers == [w - 1] and is_runtime, r
    assert r["same"] is True and r["unrelated"] is None
    assert r["elapsed"] < GROUP_TIMEOUT + 5


# ---- checked mode --------------------------------------------------------------------------------


def _checked_mode(rank: int, w: int) -> dict:
    os.environ["GRAPHSHARD_CHECKED"] = "1"  # read at graphshard's first collective
    group = dist.group.WORLD
    x = torch.ones(4, 3)
    out = {}
    out["agree"] = tuple(G.gather_tensor(x, 0, [4] * w, group).shape)
    # Rank-dependent arguments, which no local check can see: rank 1 gathers along dim 1.
    d = rank % 2
    try:
        G.gather_tensor(x, d, [x.shape[d]] * w, group)
        out["disagree"] = None
    except BaseException as e:  # noqa: BLE001
        out["disagree"] = (type(e).__name__, str(e))
    out["after"] = tuple(G.gather_tensor(x, 0, [4] * w, group).shape)
    return out


def test_checked_mode_names_the_disagreement():
    w = 2
    res = run_ranks(w, _checked_mode, timeout=60, group_timeout=10)
    for rank, r in enumerate(res):
        assert r["agree"] == (4 * w, 3) and r["after"] == (4 * w, 3), r
        assert r["disagree"] is not None, f"rank {rank}: disagreeing ranks ran the collective"
        kind, msg = r["disagree"]
        assert kind == "ValueError", (kind, msg)
        assert "disagree" in msg and "gather dim=0" in msg and "gather dim=1" in msg, msg
    # One message on every rank: each names what every rank was about to do.
    assert res[0]["disagree"][1].splitlines()[1:] == res[1]["disagree"][1].splitlines()[1:]


# ---- the harness itself --------------------------------------------------------------------------


def _hangs(rank: int, w: int):
    if rank == 1:
        t = torch.zeros(1)
        dist.recv(t, src=0)  # rank 0 never sends
    return rank


def _raises(rank: int, w: int):
    raise KeyError(f"boom on rank {rank}")


def test_harness_fails_on_a_hang():
    t = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match=r"timeout after 3 s: ranks \[(0, )?1\] of 2 still running"):
        run_ranks(2, _hangs, timeout=3)
    assert time.monotonic() - t < 20


def test_harness_reraises_a_rank_error():
    with pytest.raises(RankError, match=r"(?s)rank 0 of 1 raised.*Traceback.*_raises.*KeyError: 'boom on rank 0'"):
        run_ranks(1, _raises, timeout=30)
