"""The rows of the peer suite (peer_anemoi.py): each one call of the same function on the same
inputs, made through either side's module, graphshard's or anemoi-models' (both mirror
``anemoi.models.distributed`` name by name, so a row's call is written once against ``m``).

A row (a ``Case``) has
  * ``prepare(m)``: what one call needs, built outside the timed region: fresh clones of its
    inputs (anemoi's reduces overwrite theirs, SPEC §5 [differs]) and, for a backward row, the
    forward pass whose backward is timed with fresh upstream gradients;
  * ``run(m, state)``: the timed call: the function, or ``torch.autograd.grad`` of its outputs;
  * ``exact``: both sides must agree bitwise (False where a sum is taken: anemoi reduces in
    float32 and Gloo may add in another order, so allclose rtol 1e-5, atol 1e-6).

Primitive rows: a float32 full tensor of ``bytes`` bytes, [n, 64] cut along dim 0 or [64, n] cut
along dim 1 (n the cut dim's length); pieces balanced, or uneven (" uneven" in the function name:
sizes in proportion 2, 1, 2, 1, ... between ranks). all_to_all_transpose: ``dim`` is the split
dim, the other one the concat dim (its 64 cut the same way); its input is the full tensor cut
along the concat dim. Function names: ``F``, ``F uneven``, ``F backward``, ``F uneven backward``.

Floor rows (role ``floor``, timing only, nothing compared): where graphshard is held to half of
anemoi's time, the least that graphshard's contract leaves to do, done by torch.distributed's own
Gloo collectives on the same group: a reduce-scatter of the reduced tensor (the all-to-all of its
even dim-0 pieces and their sum into a fresh output) for reduce_shard_tensor's forward and
sync_tensor's backward; an even all-gather (``all_gather_into_tensor``) of the sources into a fresh
output for shard_graph_to_local's forward; for its backward the reduce-scatter of the sources'
gradient and the all-gathers of the gradients of x_dst and edge_attr (given whole, taken sharded:
both sides gather their gradients). The same bytes in even dim-0 pieces: a lower bound on the
slowest rank's share for uneven pieces and other dims too. For an uneven gather_tensor (whose pieces
Gloo's own all-gather pads to the largest, taking longer than graphshard): the pieces sent straight
to every peer with ``isend``/``irecv`` into a fresh output along the row's dim (along dim 1, where a
piece is a column block Gloo cannot write, through a buffer per peer and one ``cat``: gather_floor).
floor / anemoi > 0.5 shows the 0.5 target out of reach for that transport on that machine.
reduce_tensor's forward (held to anemoi's time) has one too: anemoi's own
in-place ``all_reduce`` on a fresh copy of the input, all that SPEC §5 (a new tensor, the input
untouched) leaves of it; floor / anemoi > 1.0 shows that target out of reach. So has its backward
(the identity on both sides): anemoi's backward after that forward, as its row times it.

Graph rows: E edges, n_dst = E / 8, n_src = E / 2 (so about e^-2 of the sources unconnected),
ids drawn uniformly, four float32 features per node and edge, the same on every rank.
"""

from __future__ import annotations

import dataclasses
import zlib
from types import SimpleNamespace
from typing import Callable

import torch

WIDTH = 64  # the uncut dim of a primitive's tensor
CHUNKS = 4  # sort_edges_1hop_chunks' num_chunks
FEATURES = 4  # per node and per edge in the graph rows
PRIMITIVES = ("shard_tensor", "gather_tensor", "reduce_tensor", "sync_tensor", "reduce_shard_tensor",
              "all_to_all_transpose")
GRAPH_FUNCTIONS = ("sort_edge_index_by_dst", "build_graph_partition", "shard_edges_1hop",
                   "shard_edges_1hop unsorted", "sort_edges_1hop_chunks", "drop_unconnected_src_nodes",
                   "GraphPartition::materialise", "shard_graph_to_local", "shard_graph_to_local backward")


def sides():
    """{role: namespace of its graph, khop_edges and shapes modules}."""
    import anemoi.models.distributed.graph as an_graph
    import anemoi.models.distributed.khop_edges as an_khop
    import anemoi.models.distributed.shapes as an_shapes

    import graphshard.distributed.graph as gs_graph
    import graphshard.distributed.khop_edges as gs_khop
    import graphshard.distributed.shapes as gs_shapes

    return {
        "graphshard": SimpleNamespace(graph=gs_graph, khop=gs_khop, shapes=gs_shapes),
        "anemoi": SimpleNamespace(graph=an_graph, khop=an_khop, shapes=an_shapes),
    }


@dataclasses.dataclass
class Case:
    function: str
    counters: dict  # bytes and dim, or edges
    calls: int  # timed calls per role and repetition
    exact: bool
    prepare: Callable
    run: Callable
    floor: tuple | None = None  # (prepare(), run(state)) of the floor row, if the row has one


# ---- sizes and data -----------------------------------------------------------------------------


def balanced(n, p):
    return [n // p + (1 if i < n % p else 0) for i in range(p)]


def uneven(n, p):
    """Sizes in proportion 2, 1, 2, 1, ...: neighbouring ranks differ by a factor of about 2."""
    weights = [2 if i % 2 == 0 else 1 for i in range(p)]
    sizes = [n * wt // sum(weights) for wt in weights]
    for i in range(n - sum(sizes)):
        sizes[i % p] += 1
    return sizes


def _randn(seed, *shape):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def _piece(t, dim, sizes, r):
    return t.narrow(dim, sum(sizes[:r]), sizes[r])


def calls_for_bytes(b):
    """As bench_primitives.cpp: 100 calls for small payloads, down to 16 at 16 MiB and beyond."""
    return max(16, min(100, (256 << 20) // max(b, 1)))


def calls_for_edges(e):
    return max(4, min(20, int(8e6 // max(e, 1))))


def _grad_tensors(out):
    """The tensors of a (nested) result that carry gradients, in order."""
    if torch.is_tensor(out):
        return [out] if out.requires_grad else []
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _grad_tensors(o)]
    return []


def _leaves(ts):
    return [t.detach().clone().requires_grad_(t.is_floating_point()) for t in ts]


def _with_backward(function, forward, inputs, grad_seed, replicated, r, exact):
    """Turns a forward row's pieces into its backward row: prepare runs the forward (untimed) and
    draws the upstream gradients (identical on every rank when the output is replicated)."""
    upstream = []  # drawn once (from the first forward's output shapes), cloned per call

    def prepare(m):
        xs = inputs()
        outs = _grad_tensors(forward(m, *xs))
        if not upstream:
            seed = grad_seed if replicated else grad_seed + 7919 * (r + 1)
            upstream.extend(_randn(seed + i, *o.shape) for i, o in enumerate(outs))
        return outs, [x for x in xs if x.requires_grad], [g.clone() for g in upstream]

    def run(m, state):
        outs, xs, grads = state
        return torch.autograd.grad(outs, xs, grads)

    return function + " backward", prepare, run, exact


# ---- floors -------------------------------------------------------------------------------------


def reduce_scatter_floor(rows, cols, seed, w, group):
    """A reduce-scatter of a [rows, cols] float32 tensor (rows rounded down to a multiple of w) at
    its least: Gloo's all-to-all of the even dim-0 pieces (``all_to_all_single``), then their sum
    into a fresh [rows / w, cols] output. (Gloo's own ``reduce_scatter_tensor`` takes longer than
    anemoi's whole all-reduce here: no floor.) The input a fresh clone per call, untimed."""
    import torch.distributed as dist

    m = rows - rows % w
    x = lazy(lambda: _randn(seed, m, cols))

    def run(t):
        pieces = torch.empty(m, cols)
        dist.all_to_all_single(pieces, t, group=group)
        return pieces.view(w, m // w, cols).sum(0)

    return (lambda: x().clone()), run


def all_gather_floor(rows, cols, seed, w, group):
    """Gloo's all-gather of even [rows / w, cols] float32 pieces into a fresh [rows, cols] output."""
    import torch.distributed as dist

    m = rows // w
    x = lazy(lambda: _randn(seed, m, cols))

    def run(t):
        out = torch.empty(m * w, cols)
        dist.all_gather_into_tensor(out, t, group=group)
        return out

    return (lambda: x().clone()), run


def reduce_floor(shape, seed, r, group):
    """reduce_tensor at its least under SPEC §5 (a new tensor, the input untouched): anemoi's own
    formulation, Gloo's in-place ``all_reduce``, on a fresh copy of the input, the copy timed
    (the new tensor's pages are faulted in and filled there, as graphshard's output's are)."""
    import torch.distributed as dist

    x = lazy(lambda: _randn(seed + r, *shape))

    def run(t):
        out = t.clone()
        dist.all_reduce(out, group=group)
        return out

    return (lambda: x().clone()), run


def reduce_backward_floor(shape, seed, grad_seed, r, group):
    """reduce_tensor's backward (the identity) at its least under SPEC §5: anemoi's own backward
    (a Python autograd Function that returns the incoming gradient) after the forward of
    reduce_floor (a fresh tensor reduced in place: its input untouched), timed as the backward
    rows are (``torch.autograd.grad`` on a fresh graph with a fresh upstream gradient). anemoi's
    forward returns its input, reduced in place, so its backward follows a forward that wrote no
    new tensor: floor / anemoi > 1.0 shows what the new tensor alone costs the backward."""
    inputs, fresh_reduce = reduce_floor(shape, seed, r, group)

    class FreshReduce(torch.autograd.Function):
        @staticmethod
        def forward(ctx, input_):
            return fresh_reduce(input_)

        @staticmethod
        def backward(ctx, grad_output):
            return grad_output

    grad = lazy(lambda: _randn(grad_seed, *shape))  # replicated, as the rows' upstream

    def prepare():
        t = inputs().requires_grad_()
        return FreshReduce.apply(t), t, grad().clone()

    def run(state):
        out, t, g = state
        return torch.autograd.grad([out], [t], [g])

    return prepare, run


def gather_floor(sizes, cols, seed, r, w, group, dim=0):
    """An uneven all-gather at its least, along the row's own dim: this rank's float32 piece
    (sizes[r] long along ``dim``, ``cols`` along the other) sent straight to every peer with
    ``isend``/``irecv`` (peers in anemoi's linear-shift order) into a fresh output. Along dim 0
    each peer's piece lands in its place in the output and the own piece is copied in while the
    transport moves the rest. Along dim 1 a piece is a column block of the output, which Gloo
    cannot write (it moves contiguous buffers only): each peer's piece lands in a buffer of its
    own, and one ``cat`` lays all pieces out once received. The least of the ways measured
    (16 MiB, W = 2, four launches of 150 calls each, median ms): one message per row straight
    into place 10.6-13.8, the pieces copied into place one at a time after the transfer 9.1-12.8,
    one ``cat`` after it 8.5-11.7 (1 MiB: 6.1-7.6, 1.09-1.20, 1.04-1.12); the own piece copied in
    during the transfer gained nothing (two launches of 40 calls: 9.9-10.6 against 10.0-10.4).
    (Gloo's own all-gather takes longer than graphshard's here: it pads every piece to the
    largest.)"""
    import torch.distributed as dist

    shape = (sizes[r], cols) if dim == 0 else (cols, sizes[r])
    x = lazy(lambda: _randn(seed + r, *shape))
    full = (sum(sizes), cols) if dim == 0 else (cols, sum(sizes))

    def run(t):
        out = torch.empty(*full)
        pieces, reqs = [t] * w, []
        for i in range(w):
            q = (i - r) % w
            if q == r:
                continue
            if dim == 0:
                pieces[q] = _piece(out, 0, sizes, q)
            else:
                pieces[q] = torch.empty(cols, sizes[q])
            reqs.append(dist.irecv(pieces[q], group_src=q, group=group))
            reqs.append(dist.isend(t, group_dst=q, group=group))
        if dim == 0:
            _piece(out, 0, sizes, r).copy_(t)
        for req in reqs:
            req.wait()
        if dim != 0:
            torch.cat(pieces, 1, out=out)
        return out

    return (lambda: x().clone()), run


def graph_backward_floor(nodes, e, seed, w, group):
    """shard_graph_to_local's backward at its least: the reduce-scatter of the sources' gradient
    (reduce_scatter_floor) and the all-gathers of the gradients of the destinations and the edge
    attributes, which both sides take whole and shard (all_gather_floor), one after the other
    as autograd runs them."""
    parts = [reduce_scatter_floor(nodes[0], FEATURES, seed, w, group),
             all_gather_floor(nodes[1], FEATURES, seed + 1, w, group),
             all_gather_floor(e, FEATURES, seed + 2, w, group)]

    def run(state):
        return [f_run(s) for (_, f_run), s in zip(parts, state)]

    return (lambda: [f_prepare() for f_prepare, _ in parts]), run


# ---- primitives ---------------------------------------------------------------------------------


def lazy(build):
    """build(), made on first use and kept: rows are listed up front, their data built when run
    (and freed with the last row that holds it)."""
    cache = []

    def get():
        if not cache:
            cache.append(build())
        return cache[0]

    return get


def primitive_cases(fn, nbytes, dim, is_uneven, w, r, group, calls=None):
    """The forward and backward rows of one primitive on one payload."""
    if fn not in PRIMITIVES:
        raise ValueError(f"unknown primitive {fn}")
    n = max(2 * w, nbytes // (4 * WIDTH))
    cut = (uneven if is_uneven else balanced)(n, w)
    other, other_cut = 1 - dim, (uneven if is_uneven else balanced)(WIDTH, w)
    seed = zlib.crc32(f"{fn} {n} {dim} {is_uneven}".encode())  # the same in every process
    g = group

    def build():
        shape = (n, WIDTH) if dim == 0 else (WIDTH, n)
        full = _randn(seed, *shape)  # replicated: the same on every rank
        if fn in ("reduce_tensor", "reduce_shard_tensor"):
            return _randn(seed + 1 + r, *shape)  # a partial summand: one per rank
        if fn == "shard_tensor":
            return full
        if fn == "all_to_all_transpose":
            return _piece(full, other, other_cut, r).contiguous()
        return _piece(full, dim, cut, r).contiguous()

    x = lazy(build)
    forward = {
        "shard_tensor": lambda m, t: m.graph.shard_tensor(t, dim, cut, g),
        "gather_tensor": lambda m, t: m.graph.gather_tensor(t, dim, cut, g),
        "reduce_tensor": lambda m, t: m.graph.reduce_tensor(t, g),
        "sync_tensor": lambda m, t: m.graph.sync_tensor(t, dim, cut, g),
        "reduce_shard_tensor": lambda m, t: m.graph.reduce_shard_tensor(t, dim, cut, g),
        "all_to_all_transpose": lambda m, t: m.graph.all_to_all_transpose(t, dim, cut, other, other_cut, g),
    }[fn]

    def inputs():
        return [x().clone().requires_grad_()]

    name = fn + (" uneven" if is_uneven else "")
    counters = {"bytes": n * WIDTH * 4}
    if fn != "reduce_tensor":
        counters["dim"] = dim
    k = calls or calls_for_bytes(counters["bytes"])
    fwd_exact = fn not in ("reduce_tensor", "reduce_shard_tensor")
    out = [Case(name, counters, k, fwd_exact, lambda m: inputs(),
                lambda m, state: forward(m, *state))]
    replicated = fn in ("gather_tensor", "reduce_tensor")  # R outputs: replicated gradients
    bname, prep, run, exact = _with_backward(name, forward, inputs, seed + 1000, replicated, r,
                                             fn != "sync_tensor")
    out.append(Case(bname, counters, k, exact, prep, run))
    # The floors of the rows held to half of anemoi's time (bench_summary.cpp: anemoi_target),
    # and of reduce_tensor, whose anemoi side does less than SPEC §5 allows (it reduces in place).
    if fn == "reduce_tensor":
        out[0].floor = reduce_floor((n, WIDTH), seed + 2, r, g)
        out[1].floor = reduce_backward_floor((n, WIDTH), seed + 2, seed + 1002, r, g)
    if fn == "reduce_shard_tensor":
        out[0].floor = reduce_scatter_floor(n, WIDTH, seed + 2, w, g)
    if fn == "sync_tensor":
        out[1].floor = reduce_scatter_floor(n, WIDTH, seed + 2, w, g)
    if fn == "gather_tensor" and is_uneven:
        out[0].floor = gather_floor(cut, WIDTH, seed + 2, r, w, g, dim)
    return out


def all_primitive_cases(sizes, w, r, group, calls=None):
    out = []
    for nbytes in sizes:
        for fn in PRIMITIVES:
            dims = (0,) if fn == "reduce_tensor" else (0, 1)
            for dim in dims:
                for is_uneven in (False,) if fn == "reduce_tensor" else (False, True):
                    out.extend(primitive_cases(fn, nbytes, dim, is_uneven, w, r, group, calls))
    return out


# ---- graph functions ----------------------------------------------------------------------------


def graph_nodes(e, w):
    return max(w, e // 2), max(w, e // 8)  # (n_src, n_dst)


def graph_data(e, w):
    n_src, n_dst = graph_nodes(e, w)
    gen = torch.Generator().manual_seed(e)
    dst = torch.randint(0, n_dst, (e,), generator=gen)
    src = torch.randint(0, n_src, (e,), generator=gen)
    unsorted = torch.stack([src, dst])
    perm = torch.sort(dst, stable=True).indices
    return SimpleNamespace(unsorted=unsorted, sorted=unsorted[:, perm].contiguous(),
                           edge_attr=_randn(e + 1, e, FEATURES), x_src=_randn(e + 2, n_src, FEATURES),
                           x_dst=_randn(e + 3, n_dst, FEATURES), parts={})


def graph_cases(e, w, r, group, calls=None, functions=GRAPH_FUNCTIONS):
    """The rows of the graph functions on one graph of e edges (graph_data, built on first use).
    Neither side modifies these inputs, so calls share them."""
    g, k = group, calls or calls_for_edges(e)
    nodes = graph_nodes(e, w)
    src_sizes = balanced(nodes[0], w)
    d = lazy(lambda: graph_data(e, w))

    def partition(m):  # each side's own partition of the sorted graph, built once, untimed
        parts = d().parts
        if id(m) not in parts:
            parts[id(m)] = m.khop.build_graph_partition(d().sorted, w, nodes)
        return parts[id(m)]

    def fixed(*fields):
        return lambda m: [getattr(d(), f) for f in fields]

    def sgtl_inputs():
        return _leaves([_piece(d().x_src, 0, src_sizes, r), d().x_dst, d().edge_attr])

    def sgtl(m, xs, xd, ea):
        info = m.shapes.BipartiteGraphShardInfo(src_nodes=src_sizes)
        return m.khop.shard_graph_to_local(partition(m), (xs, xd), ea, d().sorted, info, g)

    sgtl_leaves = lazy(sgtl_inputs)
    rows = {
        "sort_edge_index_by_dst": (fixed("unsorted"),
                                   lambda m, ei: m.khop.sort_edge_index_by_dst(ei, nodes[1])),
        "build_graph_partition": (fixed("sorted"),
                                  lambda m, ei: m.khop.build_graph_partition(ei, w, nodes)),
        "shard_edges_1hop": (fixed("edge_attr", "sorted"),
                             lambda m, ea, ei: m.khop.shard_edges_1hop(ea, ei, *nodes, g)),
        "shard_edges_1hop unsorted": (fixed("edge_attr", "unsorted"),
                                      lambda m, ea, ei: m.khop.shard_edges_1hop(ea, ei, *nodes, g, False)),
        "sort_edges_1hop_chunks": (fixed("edge_attr", "sorted"),
                                   lambda m, ea, ei: m.khop.sort_edges_1hop_chunks(nodes, ea, ei, CHUNKS)),
        "drop_unconnected_src_nodes": (fixed("x_src", "sorted"),
                                       lambda m, x, ei: m.khop.drop_unconnected_src_nodes(x, ei, nodes)),
        "GraphPartition::materialise": (fixed("x_src", "x_dst", "edge_attr", "sorted"),
                                        lambda m, xs, xd, ea, ei: partition(m).materialise(r, (xs, xd), ea, ei)),
        "shard_graph_to_local": (lambda m: sgtl_leaves(), sgtl),
    }
    out = []
    for name in functions:
        if name == "shard_graph_to_local backward":
            bname, prep, run, exact = _with_backward("shard_graph_to_local", sgtl, sgtl_inputs,
                                                     e + 4, False, r, False)
            out.append(Case(bname, {"edges": e}, k, exact, prep, run,
                            graph_backward_floor(nodes, e, e + 5, w, g)))
            continue
        prepare, forward = rows[name]
        out.append(Case(name, {"edges": e}, k, True, prepare,
                        lambda m, state, f=forward: f(m, *state)))
        if name == "shard_graph_to_local":
            out[-1].floor = all_gather_floor(nodes[0], FEATURES, e + 5, w, g)
    return out


# ---- comparing the two sides --------------------------------------------------------------------


def normalise(v):
    """Tensors, numbers and None as they are; dataclasses as dicts of their fields; tuples, lists
    and other iterables (graphshard's MaterialisedPartition) as lists."""
    if torch.is_tensor(v) or v is None or isinstance(v, (bool, int, float, str)):
        return v.detach() if torch.is_tensor(v) else v
    if dataclasses.is_dataclass(v):
        return {f.name: normalise(getattr(v, f.name)) for f in dataclasses.fields(v)}
    return [normalise(x) for x in v]


def difference(a, b, exact, where="result"):
    """None when a (graphshard's) and b (anemoi's) agree, else what differs."""
    if torch.is_tensor(a) or torch.is_tensor(b):
        if not (torch.is_tensor(a) and torch.is_tensor(b)):
            return f"{where}: {type(a).__name__} vs {type(b).__name__}"
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"{where}: {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}"
        if exact and not torch.equal(a, b):
            return f"{where}: not bitwise equal (max |diff| {(a.double() - b.double()).abs().max().item():.3g})"
        if not exact and not torch.allclose(a, b, rtol=1e-5, atol=1e-6):
            return f"{where}: not allclose (max |diff| {(a.double() - b.double()).abs().max().item():.3g})"
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return f"{where}: fields {sorted(a)} vs {sorted(b)}"
        return next((d for k in a if (d := difference(a[k], b[k], exact, f"{where}.{k}"))), None)
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items vs {len(b)}"
        return next((d for i, (x, y) in enumerate(zip(a, b)) if (d := difference(x, y, exact, f"{where}[{i}]"))),
                    None)
    return None if a == b else f"{where}: {a!r} vs {b!r}"
