"""torch.compile and torch.library.opcheck of graphshard's primitive operators, at W = 2.

- a small sharded message-passing layer (sync_tensor of the source shard, index_select, linear,
  index_add_, gather_tensor of the output), and a chain through every primitive, compiled with
  ``fullgraph=True`` and ``backend="aot_eager"``, equal eager in output and every gradient; a
  recording AOTAutograd backend shows the graphshard operators in the forward and backward graphs;
- the same with ``backend="inductor"`` (opt-in: GRAPHSHARD_TEST_INDUCTOR=1, see below);
- ``torch.library.opcheck`` of each primitive operator, one test util at a time.

Graph functions (khop_edges) are eager-only, so the local graph is computed outside the region.

Regression (found by this suite): the operators' Meta kernels (core/ops/primitive_ops.cpp,
shard_meta/gather_meta/sync_meta/reduce_shard_meta/all_to_all_meta) bound
``const auto& s = detail::require_sizes(..., to_sizes(sizes), ...)``: ``require_sizes`` returns a
reference into its ``ShardSizes`` argument, there the temporary that ``to_sizes`` returned, gone
at the end of the statement, so the kernels read garbage sizes under FakeTensor: torch.compile and
opcheck's test_faketensor / test_aot_dispatch_dynamic failed with "sizes: expected ..., got
[<garbage>]" or "negative dimension". ``test_meta_kernels_keep_sizes`` probes exactly that.
"""

from __future__ import annotations

import copy
import os
import traceback

import pytest
import torch
import torch.distributed as dist

import graphshard  # noqa: F401 - loads the operator library (torch.ops.graphshard)

from conftest import balanced, run_ranks, tensor

OPS = ["shard_tensor", "gather_tensor", "reduce_tensor", "sync_tensor", "reduce_shard_tensor", "all_to_all_transpose"]
UTILS = ["test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic"]


class ShardedMessagePassing(torch.nn.Module):
    """Destination shard's update from the (synced) sources over the local edges."""

    def __init__(self, f: int, group, src_sharded: bool = True):
        super().__init__()
        self.msg = torch.nn.Linear(f, f, dtype=torch.float64)
        self.dst = torch.nn.Linear(f, f, dtype=torch.float64)
        self.group = group
        self.src_sharded = src_sharded

    def forward(self, x_src, x_dst, edge_index, edge_attr, src_sizes: list[int], dst_sizes: list[int]):
        from graphshard.distributed.graph import gather_tensor, sync_tensor

        # A sharded source: gathered (S -> R), its gradient all-reduced then cut. A replicated one:
        # no forward communication, its gradient all-reduced.
        xs = sync_tensor(x_src, 0, src_sizes if self.src_sharded else None, self.group)
        m = self.msg(xs.index_select(0, edge_index[0])) * edge_attr
        agg = torch.zeros(x_dst.shape[0], m.shape[1], dtype=m.dtype)
        agg.index_add_(0, edge_index[1], m)
        agg = agg + torch.zeros_like(agg).scatter_add(0, edge_index[1].unsqueeze(1).expand_as(m), m)
        return gather_tensor(agg + self.dst(x_dst), 0, dst_sizes, self.group)


class Chain(torch.nn.Module):
    """Every primitive once, R -> S(0) -> S(1) -> S(0) -> R."""

    def __init__(self, group, sizes0, sizes1):
        super().__init__()
        self.group, self.sizes0, self.sizes1 = group, sizes0, sizes1

    def forward(self, x):
        from graphshard.distributed import graph as G

        g, s0, s1 = self.group, self.sizes0, self.sizes1
        a = G.shard_tensor(x, 0, s0, g)  # R -> S(0)
        b = G.all_to_all_transpose(a, 1, s1, 0, s0, g)  # S(0) -> S(1)
        c = G.gather_tensor(b.sin(), 1, s1, g)  # S(1) -> R
        d = G.reduce_shard_tensor(c * c, 0, s0, g)  # P -> S(0)
        e = G.sync_tensor(d, 0, s0, g)  # S(0) -> R, gradient P
        f = G.reduce_tensor(e * 0.5, g)  # P -> R
        h = G.shard_tensor(x, 1, s1, g, gather_in_backward=False)  # R -> S(1), expand backward
        return f.sum(dim=1) + G.gather_tensor(h.cos(), 1, s1, g).sum(dim=1)


def _local_graph(rank, w):
    """A bipartite graph cut by destination: this rank's edges (global sources, local
    destinations), its source and destination shards and sizes; computed eagerly."""
    from graphshard.distributed import khop_edges as K

    n_src, n_dst, e, f = 7, 5, 14, 3
    g = torch.Generator().manual_seed(11)
    src = torch.randint(0, n_src, (e,), generator=g)
    dst = torch.sort(torch.randint(0, n_dst, (e,), generator=g)).values
    ei = torch.stack([src, dst])
    p = K.build_graph_partition(ei, w, (n_src, n_dst))
    es, ds = p._get_edge_range(rank), p._get_dst_range(rank)
    ei_local = p._relabel_dst_nodes(ei[:, es], rank, in_place=False)
    x_src, x_dst, ea = tensor(1, (n_src, f), torch.float64), tensor(2, (n_dst, f), torch.float64), tensor(3, (e, f), torch.float64)
    src_sizes = balanced(n_src, w)
    return dict(
        f=f,
        x_src_full=x_src,
        x_src_shard=torch.split(x_src, src_sizes)[rank],
        x_dst=x_dst[ds],
        edge_index=ei_local,
        edge_attr=ea[es],
        src_sizes=src_sizes,
        dst_sizes=p.dst_splits,
    )


def _run(model, inputs, needs_grad):
    leaves = [t.detach().clone().requires_grad_(True) if k in needs_grad else t for k, t in inputs]
    out = model(*leaves)
    gy = tensor(99, out.shape, out.dtype)
    out.backward(gy)
    grads = [t.grad for (k, _), t in zip(inputs, leaves) if k in needs_grad]
    grads += [p.grad.clone() for p in model.parameters()]
    return out.detach(), grads


def _compare(eager, compiled):
    (y0, g0), (y1, g1) = eager, compiled
    diffs = [float((y0 - y1).abs().max()) if y0.numel() else 0.0]
    for a, b in zip(g0, g1):
        assert a is not None and b is not None and a.shape == b.shape
        diffs.append(float((a - b).abs().max()) if a.numel() else 0.0)
    return dict(n_grads=len(g0), max_diff=max(diffs), exact=all(d == 0.0 for d in diffs))


def _models(rank, w, group):
    lg = _local_graph(rank, w)
    cases = {}
    for src_sharded in (True, False):
        torch.manual_seed(5)
        m = ShardedMessagePassing(lg["f"], group, src_sharded)
        x_src = lg["x_src_shard"] if src_sharded else lg["x_src_full"]
        inputs = [("x_src", x_src), ("x_dst", lg["x_dst"]), ("edge_index", lg["edge_index"]), ("edge_attr", lg["edge_attr"])]
        cases[f"message_passing(src_sharded={src_sharded})"] = (m, inputs, (lg["src_sizes"], lg["dst_sizes"]))
    x = tensor(7, (5, 2 * w), torch.float64)
    cases["chain"] = (Chain(group, balanced(5, w), [2] * w), [("x", x)], ())
    return cases


def _compile_and_compare(rank, w, group, backend):
    from torch._dynamo.backends.common import aot_autograd

    out = {}
    for name, (model, inputs, extra) in _models(rank, w, group).items():
        needs = {"x_src", "x_dst", "edge_attr", "x"}
        args = inputs + [(f"extra{i}", v) for i, v in enumerate(extra)]
        try:
            eager = _run(model, args, needs)
            model.zero_grad()
            seen = {"fw": set(), "bw": set()}
            if backend == "recording":

                def recorder(kind):
                    def compiler(gm, example_inputs):
                        seen[kind].update(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
                        return gm

                    return compiler

                be = aot_autograd(fw_compiler=recorder("fw"), bw_compiler=recorder("bw"))
            else:
                be = backend
            torch._dynamo.reset()
            compiled_model = torch.compile(copy.copy(model), fullgraph=True, backend=be)
            compiled = _run(compiled_model, args, needs)
            res = _compare(eager, compiled)
            res["ops"] = {k: sorted(o for o in v if "graphshard" in o) for k, v in seen.items()}
            out[name] = res
        except Exception:  # noqa: BLE001 - reported to the parent
            out[name] = dict(error=traceback.format_exc()[-4000:])
    return out


def _probe_meta(rank, w, group):
    """Do the Meta kernels keep the sizes they were given? (The regression above.)"""
    from torch._subclasses.fake_tensor import FakeTensorMode

    O, name = torch.ops.graphshard, group.group_name
    s = [2] * w
    try:
        with FakeTensorMode():
            x = torch.empty(2 * w, 3)
            shapes = [
                tuple(O.shard_tensor(x, 0, s, name, True).shape),
                tuple(O.gather_tensor(x, 1, [3] * w, name).shape),
                tuple(O.sync_tensor(x[:2], 0, s, name, True).shape),
                tuple(O.reduce_shard_tensor(x, 0, s, name).shape),
                tuple(O.all_to_all_transpose(x, 0, s, 1, [3] * w, name).shape),
            ]
        return shapes == [(2, 3), (2 * w, 3 * w), (2 * w, 3), (2, 3), (2, 3 * w)]
    except Exception:  # noqa: BLE001 - garbage sizes fail the kernels' own checks
        return False


def _opchecks(rank, w, group):
    O, name = torch.ops.graphshard, group.group_name

    def x(*shape):
        return torch.randn(*shape, requires_grad=True)

    torch.manual_seed(0)  # the same tensors on every rank: the sizes below are the same too
    r = rank
    cases = {
        "shard_tensor": (O.shard_tensor.default, (x(5, 3), 0, [3, 2] + [0] * (w - 2), name, True)),
        "gather_tensor": (O.gather_tensor.default, (x(2, 3), 1, [3] * w, name)),
        "reduce_tensor": (O.reduce_tensor.default, (x(2, 3), name)),
        "sync_tensor": (O.sync_tensor.default, (x(2, 3), 0, [2] * w, name, True)),
        "reduce_shard_tensor": (O.reduce_shard_tensor.default, (x(4, 3), 0, [1, 3] + [0] * (w - 2), name)),
        "all_to_all_transpose": (O.all_to_all_transpose.default, (x(4, 3), 0, [2, 2] + [0] * (w - 2), 1, [3] * w, name)),
    }
    assert r < w
    out = {}
    for op_name, (op, args) in cases.items():
        for util in UTILS:
            try:
                res = torch.library.opcheck(op, args, test_utils=util, raise_exception=False)
                v = res[util]
                out[(op_name, util)] = "SUCCESS" if v == "SUCCESS" else f"{type(v).__name__}: {v}"
            except Exception:  # noqa: BLE001
                out[(op_name, util)] = traceback.format_exc()[-3000:]
    return out


def compile_run(rank: int, w: int, backends: list[str], with_opcheck: bool) -> dict:
    group = dist.group.WORLD
    out = {"meta_ok": _probe_meta(rank, w, group)}
    for b in backends:
        out[b] = _compile_and_compare(rank, w, group, b)
    if with_opcheck:
        out["opcheck"] = _opchecks(rank, w, group)
    return out


_RUN: dict = {}


def _results():
    if "res" not in _RUN:
        try:
            _RUN["res"] = run_ranks(2, compile_run, ["aot_eager", "recording"], True, timeout=120, group_timeout=10)
        except BaseException as e:  # every test of the module fails with it, without a rerun
            _RUN["res"] = e
    if isinstance(_RUN["res"], BaseException):
        raise _RUN["res"]
    return _RUN["res"]


def _assert_compiled(results, backend, exact):
    for rank, res in enumerate(results):
        for name, r in res[backend].items():
            assert "error" not in r, f"rank {rank} {name}: {r.get('error')}"
            assert r["n_grads"] >= 1
            if exact:
                assert r["exact"], f"rank {rank} {name}: compiled != eager, max diff {r['max_diff']}"
            else:
                assert r["max_diff"] <= 1e-12, f"rank {rank} {name}: compiled != eager, max diff {r['max_diff']}"
        assert set(res[backend]) == {"message_passing(src_sharded=True)", "message_passing(src_sharded=False)", "chain"}


def test_meta_kernels_keep_sizes():
    """The probe itself: the Meta kernels give the right output shapes under FakeTensor."""
    results = _results()
    assert all(r["meta_ok"] for r in results), "a Meta kernel lost the sizes it was given (see the module docstring)"


def test_compile_aot_eager_equals_eager():
    results = _results()
    _assert_compiled(results, "aot_eager", exact=False)


def test_compiled_graphs_hold_the_operators():
    """fullgraph: the operators are in the traced graphs, forward and backward (each backward is
    an operator too, so AOTAutograd traces it)."""
    results = _results()
    _assert_compiled(results, "recording", exact=False)
    for res in results:
        ops = res["recording"]
        mp = ops["message_passing(src_sharded=True)"]["ops"]
        assert "graphshard.sync_tensor.default" in mp["fw"] and "graphshard.gather_tensor.default" in mp["fw"], mp
        # sync's backward: the reduce and the cut are one reduce-scatter
        assert "graphshard.reduce_shard_tensor.default" in mp["bw"], mp
        fw = set(ops["chain"]["ops"]["fw"])
        # shard_tensor is CompositeImplicitAutograd (its result may be a view of its input, SPEC
        # §2): traced, it is the slice it decomposes into, and its backward the gather operator.
        want = {f"graphshard.{op}.default" for op in OPS if op != "shard_tensor"}
        assert want <= fw, f"chain forward graph lacks {want - fw}"
        assert "graphshard.shard_tensor.default" not in fw, fw
        bw = ops["chain"]["ops"]["bw"]
        assert "graphshard._expand_piece.default" in bw and "graphshard.gather_tensor.default" in bw, bw
        # A replicated source: sync's identity forward (an autograd.Function) and its reduce in
        # the backward graph.
        rep = ops["message_passing(src_sharded=False)"]["ops"]
        assert "graphshard.reduce_tensor.default" in rep["bw"] and "graphshard.sync_tensor.default" not in rep["fw"], rep


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("util", UTILS)
def test_opcheck(op, util):
    results = _results()
    for rank, res in enumerate(results):
        assert res["opcheck"][(op, util)] == "SUCCESS", f"rank {rank}: opcheck {op} {util}: {res['opcheck'][(op, util)]}"


# Inductor compiles C++ for every graph; on this 2-core machine that measured 27 s (warm cache)
# to 40 s (cold) for the two ranks, a third of the whole suite's budget. Opt-in.
INDUCTOR = os.environ.get("GRAPHSHARD_TEST_INDUCTOR") == "1"


@pytest.mark.skipif(
    not INDUCTOR,
    reason="inductor works here but compiles C++ for ~30-40 s on 2 cores (over the suite's budget); "
    "set GRAPHSHARD_TEST_INDUCTOR=1 to run it",
)
def test_compile_inductor_equals_eager():
    results = run_ranks(2, compile_run, ["inductor"], False, timeout=300, group_timeout=30)
    for rank, res in enumerate(results):
        for name, r in res["inductor"].items():
            err = r.get("error", "")
            if "CppCompileError" in err or "InvalidCxxCompiler" in err:
                pytest.skip(f"inductor cannot compile on this machine: {err.splitlines()[-1]}")
    _assert_compiled(results, "inductor", exact=False)
