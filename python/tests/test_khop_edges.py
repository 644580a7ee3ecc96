"""graphshard.distributed.khop_edges (SPEC §3): against plain torch references, and sharded
message passing over Gloo equal to the unsharded layer in value and gradients."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
import torch.distributed as dist
from hypothesis import given
from hypothesis import strategies as st

from conftest import balanced, bitwise_equal, run_ranks, tensor
from graphshard.distributed import khop_edges as K
from graphshard.distributed.shapes import BipartiteGraphShardInfo

# ---- random graphs -------------------------------------------------------------------------------


@st.composite
def graphs(draw, sorted_by_dst=None, max_nodes=9, max_edges=24):
    """(n_src, n_dst, edge_index): ids in range, int64 or int32, dst-sorted if asked."""
    n_src = draw(st.integers(0, max_nodes))
    n_dst = draw(st.integers(0, max_nodes))
    e = 0 if n_src == 0 or n_dst == 0 else draw(st.integers(0, max_edges))
    src = draw(st.lists(st.integers(0, max(n_src - 1, 0)), min_size=e, max_size=e))
    dst = draw(st.lists(st.integers(0, max(n_dst - 1, 0)), min_size=e, max_size=e))
    if sorted_by_dst is None:
        sorted_by_dst = draw(st.booleans())
    if sorted_by_dst:
        order = sorted(range(e), key=lambda i: dst[i])  # stable
        src, dst = [src[i] for i in order], [dst[i] for i in order]
    dtype = draw(st.sampled_from([torch.int64, torch.int32]))
    ei = torch.tensor([src, dst], dtype=dtype).reshape(2, e)
    return n_src, n_dst, ei


def features(n: int, f: int = 2, seed: int = 0) -> torch.Tensor:
    return tensor(seed, (n, f), torch.float64)


def ref_sort(ei):
    perm = torch.sort(ei[1], stable=True).indices
    return ei[:, perm], perm


def ref_partition(ei, parts, n_src, n_dst):
    dst_splits = balanced(n_dst, parts)
    bounds = [sum(dst_splits[:i]) for i in range(parts + 1)]
    edge_splits = [int(((ei[1] >= bounds[i]) & (ei[1] < bounds[i + 1])).sum()) for i in range(parts)]
    return dst_splits, edge_splits


def ref_relabel_src(src):
    ids = torch.unique(src.long(), sorted=True)
    return ids, torch.searchsorted(ids, src.long())


# ---- single process ------------------------------------------------------------------------------


@given(graphs())
def test_sort_edge_index_by_dst(g):
    n_src, n_dst, ei = g
    before = ei.clone()
    out, perm = K.sort_edge_index_by_dst(ei)
    want, want_perm = ref_sort(ei)
    assert out.dtype == ei.dtype and perm.dtype == torch.int64
    assert torch.equal(out, want) and torch.equal(perm, want_perm)
    assert torch.equal(ei[:, perm], out)
    assert torch.equal(ei, before)
    # max_value: an exclusive bound on the destinations; the result does not depend on it.
    bound = int(ei[1].max()) + 1 if ei.numel() else 0
    out2, perm2 = K.sort_edge_index_by_dst(ei, max(bound, n_dst))
    assert torch.equal(out2, want) and torch.equal(perm2, want_perm)
    if ei.shape[1] > 0:
        with pytest.raises(ValueError, match=r"graphshard::sort_edge_index_by_dst: edge_index: expected"):
            K.sort_edge_index_by_dst(ei, bound - 1)


@given(graphs())
def test_is_edge_index_dst_sorted(g):
    _, _, ei = g
    want = bool((ei[1][1:] >= ei[1][:-1]).all()) if ei.shape[1] > 1 else True
    assert K.is_edge_index_dst_sorted(ei) is want
    assert K.is_edge_index_dst_sorted(ref_sort(ei)[0]) is True


@given(graphs(sorted_by_dst=True), st.integers(1, 5))
def test_build_graph_partition(g, parts):
    n_src, n_dst, ei = g
    p = K.build_graph_partition(ei, parts, (n_src, n_dst))
    dst_splits, edge_splits = ref_partition(ei, parts, n_src, n_dst)
    assert isinstance(p, K.GraphPartition)
    assert p == K.GraphPartition((n_src, n_dst), ei.shape[1], parts, dst_splits, edge_splits)
    assert p.dst_splits == balanced(n_dst, parts) and sum(p.edge_splits) == ei.shape[1]
    for i in range(parts):  # anemoi-models' private range helpers
        e0, d0 = sum(edge_splits[:i]), sum(dst_splits[:i])
        assert p._get_edge_range(i) == slice(e0, e0 + edge_splits[i])
        assert p._get_dst_range(i) == slice(d0, d0 + dst_splits[i])
    # From shard info with a None group: one part, sizes from the tensors.
    x = (features(n_src), features(n_dst))
    q = K.build_graph_partition_from_shard_info(ei, x, BipartiteGraphShardInfo(), None)
    assert q == K.build_graph_partition(ei, 1, (n_src, n_dst))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.num_parts = 3


@given(graphs(sorted_by_dst=True), st.integers(1, 4), st.booleans(), st.data())
def test_materialise(g, parts, with_cond, data):
    n_src, n_dst, ei = g
    p = K.build_graph_partition(ei, parts, (n_src, n_dst))
    i = data.draw(st.integers(0, parts - 1))
    x_src, x_dst = features(n_src, 2, 1), features(n_dst, 2, 2)
    ea = features(ei.shape[1], 3, 3)
    cond = (features(n_src, 1, 4), features(n_dst, 1, 5)) if with_cond else None
    keep = [t.clone() for t in (x_src, x_dst, ea, ei)]
    m = p.materialise(i, (x_src, x_dst), ea, ei, cond=cond)

    es, ds = p._get_edge_range(i), p._get_dst_range(i)
    part = ei[:, es]
    ids, src_local = ref_relabel_src(part[0])
    want_ei = torch.stack([src_local, part[1].long() - ds.start]).to(ei.dtype)
    assert torch.equal(m.src_ids.long(), ids)
    assert torch.equal(m.edge_index.long(), want_ei.long()) and m.edge_index.dtype == ei.dtype
    assert bitwise_equal(m.x_src, x_src[ids]) and bitwise_equal(m.x_dst, x_dst[ds])
    assert bitwise_equal(m.edge_attr, ea[es])
    # Unpacks into four values, as anemoi-models' implementation returns.
    assert len(m) == 4
    (xs, xd), a, e, c = m
    assert xs is m.x_src and xd is m.x_dst and a is m.edge_attr and e is m.edge_index and c is m.cond
    if with_cond:
        assert bitwise_equal(m.cond[0], cond[0][ids]) and bitwise_equal(m.cond[1], cond[1][ds])
    else:
        assert m.cond is None
    for t, k in zip((x_src, x_dst, ea, ei), keep):
        assert bitwise_equal(t, k), "materialise modified an input"
    if ei.shape[1]:
        assert m.edge_index.data_ptr() != ei.data_ptr()


@given(graphs(sorted_by_dst=True), st.integers(1, 3), st.data())
def test_relabel_dst_nodes(g, parts, data):
    """anemoi-models' private helper: in place by default, on a copy with in_place=False."""
    n_src, n_dst, ei = g
    p = K.build_graph_partition(ei, parts, (n_src, n_dst))
    i = data.draw(st.integers(0, parts - 1))
    want = ei.clone()
    want[1] -= sum(p.dst_splits[:i])
    before = ei.clone()
    out = p._relabel_dst_nodes(ei, i, in_place=False)
    assert torch.equal(out, want) and torch.equal(ei, before)
    out = p._relabel_dst_nodes(ei, i)
    assert out is ei and torch.equal(ei, want)


@given(graphs(), st.integers(1, 5), st.booleans())
def test_sort_edges_1hop_chunks(g, chunks, plain):
    n_src, n_dst, ei = g
    if plain:  # one node count: a plain graph, n_src == n_dst
        n = max(n_src, n_dst)
        num_nodes, n_dst = n, n
    else:
        num_nodes = (n_src, n_dst)
    sorted_ = K.is_edge_index_dst_sorted(ei)
    ea = features(ei.shape[1], 2, 7)
    before = (ea.clone(), ei.clone())
    attrs, idx = K.sort_edges_1hop_chunks(num_nodes, ea, ei, chunks, edges_are_dst_sorted=sorted_)
    assert isinstance(attrs, list) and isinstance(idx, list) and len(attrs) == len(idx) == chunks
    bounds = [0]
    for s in balanced(n_dst, chunks):
        bounds.append(bounds[-1] + s)
    for i in range(chunks):
        mask = (ei[1] >= bounds[i]) & (ei[1] < bounds[i + 1])
        assert torch.equal(idx[i], ei[:, mask]), f"chunk {i}"
        assert bitwise_equal(attrs[i], ea[mask])
    assert bitwise_equal(ea, before[0]) and torch.equal(ei, before[1])
    if sorted_:  # both paths agree on sorted edges
        attrs2, idx2 = K.sort_edges_1hop_chunks(num_nodes, ea, ei, chunks, edges_are_dst_sorted=False)
        assert all(torch.equal(a, b) for a, b in zip(idx, idx2))
        assert all(bitwise_equal(a, b) for a, b in zip(attrs, attrs2))


@given(graphs())
def test_drop_unconnected_src_nodes(g):
    n_src, n_dst, ei = g
    x_src = features(n_src, 3, 8)
    before = ei.clone()
    xs, out, kept = K.drop_unconnected_src_nodes(x_src, ei, (n_src, n_dst))
    ids, src_local = ref_relabel_src(ei[0])
    assert torch.equal(kept.long(), ids)
    assert bitwise_equal(xs, x_src[ids])
    assert torch.equal(out[0].long(), src_local) and torch.equal(out[1], ei[1]) and out.dtype == ei.dtype
    assert torch.equal(ei, before), "the input edge index was modified"


@given(graphs())
def test_ensure_edges_are_dst_sorted(g):
    n_src, n_dst, ei = g
    ea = features(ei.shape[1], 2, 9)
    a, e = K.ensure_edges_are_dst_sorted(ea, ei, num_dst=n_dst, edges_are_sharded=False)
    assert a is ea and e is ei  # the flag says sorted: returned unchanged
    a, e = K.ensure_edges_are_dst_sorted(ea, ei, num_dst=n_dst, edges_are_sharded=True, edges_are_dst_sorted=False)
    want, perm = ref_sort(ei)
    assert torch.equal(e, want) and bitwise_equal(a, ea[perm])


@given(graphs(sorted_by_dst=True))
def test_not_distributed_graph_functions(g):
    """A None group: shard_edges_1hop and shard_graph_to_local return everything unchanged."""
    n_src, n_dst, ei = g
    ea = features(ei.shape[1], 2, 10)
    a, e, sizes = K.shard_edges_1hop(ea, ei, n_src, n_dst, None)
    assert a is ea and e is ei and sizes is None
    x = (features(n_src), features(n_dst))
    p = K.build_graph_partition(ei, 1, (n_src, n_dst))
    info = BipartiteGraphShardInfo()
    (xs, xd), a, e, info2, cond = K.shard_graph_to_local(p, x, ea, ei, info, None)
    assert xs is x[0] and xd is x[1] and a is ea and e is ei and info2 == info and cond is None


# ---- sharded message passing over Gloo -----------------------------------------------------------


def layer(x_src, x_dst, edge_attr, edge_index, weight):
    """A small message-passing layer: sum over incoming edges of x_src[src] * edge_attr, plus a
    linear map of x_dst."""
    src, dst = edge_index[0].long(), edge_index[1].long()
    msg = x_src.index_select(0, src) * edge_attr
    agg = torch.zeros(x_dst.shape[0], msg.shape[1], dtype=msg.dtype).index_add(0, dst, msg)
    return agg + x_dst @ weight


def leaf(t):
    return t.detach().clone().requires_grad_(True)


def close(a, b):
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-10, atol=1e-10)


def sharded_layer_run(rank: int, w: int, seed: int, n_cases: int) -> dict:
    from graphshard.distributed import graph as G

    group = dist.group.WORLD
    rng = random.Random(seed)
    checked = {"value": 0, "grad": 0, "info": 0, "cond": 0, "partition": 0}
    for i in range(n_cases):
        n_src, n_dst = rng.randint(0, 9), rng.randint(0, 9)
        e = 0 if n_src * n_dst == 0 else rng.randint(0, 25)
        f = rng.randint(1, 3)
        itype = rng.choice([torch.int64, torch.int32])
        src_sharded, dst_sharded = rng.random() < 0.5, rng.random() < 0.5
        edges = rng.choice(["full", "sharded_sorted", "sharded_unsorted"])
        with_cond = rng.random() < 0.5
        src_exchange = rng.choice(["all_gather", "halo"])
        what = f"case {i}: n=({n_src}, {n_dst}) E={e} F={f} src_sharded={src_sharded} dst_sharded={dst_sharded} edges={edges} src_exchange={src_exchange} rank {rank}"

        g = torch.Generator().manual_seed(rng.randrange(2**31))
        src = torch.randint(0, max(n_src, 1), (e,), generator=g)
        dst = torch.sort(torch.randint(0, max(n_dst, 1), (e,), generator=g)).values
        ei = torch.stack([src, dst]).to(itype)
        s = rng.randrange(2**31)
        x_src, x_dst, ea = tensor(s, (n_src, f), torch.float64), tensor(s + 1, (n_dst, f), torch.float64), tensor(s + 2, (e, f), torch.float64)
        weight = tensor(s + 3, (f, f), torch.float64)
        gy = tensor(s + 4, (n_dst, f), torch.float64)  # replicated upstream gradient

        # Unsharded, on every rank.
        u = [leaf(t) for t in (x_src, x_dst, ea, weight)]
        out_full = layer(u[0], u[1], u[2], ei, u[3])
        out_full.backward(gy)
        g_src, g_dst, g_ea, g_w = (t.grad for t in u)

        # Sharded.
        partition = K.build_graph_partition(ei, w, (n_src, n_dst))
        src_sizes = balanced(n_src, w) if src_sharded else None
        xs_in = leaf(torch.split(x_src, src_sizes)[rank]) if src_sharded else leaf(x_src)
        xd_in = leaf(torch.split(x_dst, partition.dst_splits)[rank]) if dst_sharded else leaf(x_dst)
        w_in = leaf(weight)
        perm = torch.arange(e)
        if edges == "full":
            ea_in = leaf(ea)
            ea_l, ei_l, edge_sizes = ea_in, ei, None
        else:
            if edges == "sharded_unsorted":
                perm = torch.randperm(e, generator=g)
            ea_in = leaf(ea[perm])
            ea_l, ei_l, edge_sizes = K.shard_edges_1hop(
                ea_in, ei[:, perm], n_src, n_dst, group, edges_are_dst_sorted=edges == "sharded_sorted"
            )
            assert edge_sizes == partition.edge_splits, f"{what}: edge sizes {edge_sizes} != {partition.edge_splits}"
            assert ei_l.shape[1] == edge_sizes[rank] and ea_l.shape[0] == edge_sizes[rank], what
        info = BipartiteGraphShardInfo(
            src_nodes=src_sizes, dst_nodes=partition.dst_splits if dst_sharded else None, edges=edge_sizes
        )
        # The partition from the shard info (what a layer computes) is the same partition.
        from_info = K.build_graph_partition_from_shard_info(ei_l if edge_sizes else ei, (xs_in, xd_in), info, group)
        assert from_info == partition, f"{what}: {from_info} != {partition}"
        checked["partition"] += 1

        cond = (xs_in.detach() * 3, xd_in.detach() * 5) if with_cond else None
        (xs_l, xd_l), ea_ll, ei_ll, info_l, cond_l = K.shard_graph_to_local(
            partition, (xs_in, xd_in), ea_l, ei_l, info, group, cond=cond, src_exchange=src_exchange
        )
        assert info_l == BipartiteGraphShardInfo(src_sizes, partition.dst_splits, partition.edge_splits), f"{what}: {info_l}"
        checked["info"] += 1
        if with_cond:
            assert bitwise_equal(cond_l[0], xs_l.detach() * 3), f"{what}: cond_src not selected as x_src"
            assert cond_l[1] is cond[1], f"{what}: cond_dst not returned as given"
            checked["cond"] += 1
        else:
            assert cond_l is None
        assert xd_l.shape[0] == partition.dst_splits[rank], what
        out_l = layer(xs_l, xd_l, ea_ll, ei_ll, w_in)
        out = G.gather_tensor(out_l, 0, partition.dst_splits, group)
        assert close(out, out_full.detach()), f"{what}: sharded output != unsharded:\n{out}\nvs\n{out_full}"
        checked["value"] += 1
        out.backward(gy)

        want_src = torch.split(g_src, src_sizes)[rank] if src_sharded else g_src
        want_dst = torch.split(g_dst, partition.dst_splits)[rank] if dst_sharded else g_dst
        assert close(xs_in.grad, want_src), f"{what}: grad x_src {xs_in.grad} != {want_src}"
        assert close(xd_in.grad, want_dst), f"{what}: grad x_dst {xd_in.grad} != {want_dst}"
        assert close(ea_in.grad, g_ea[perm]), f"{what}: grad edge_attr {ea_in.grad} != {g_ea[perm]}"
        # The weights are replicated: their gradient is the sum of the ranks' partial ones.
        gw = w_in.grad.clone()
        dist.all_reduce(gw)
        assert close(gw, g_w), f"{what}: grad weight {gw} != {g_w}"
        checked["grad"] += 1
    return checked


@pytest.mark.parametrize("w", [2, 3])
def test_sharded_layer_equals_unsharded(w):
    n = 60
    results = run_ranks(w, sharded_layer_run, 777 + w, n, timeout=90)
    for r, checked in enumerate(results):
        assert checked["value"] == n and checked["grad"] == n and checked["info"] == n, (r, checked)
        assert checked["cond"] > 5, (r, checked)
