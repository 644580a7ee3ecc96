"""The rank side of the anemoi-layer tests (test_anemoi.py at W = 2; test_anemoi_w4_mapper.py and
test_anemoi_w4_processor.py at W = 4): data and layers built identically on every rank, and the
cases one rank runs.

A GraphTransformerForwardMapper and a GraphTransformerProcessor (``shard_strategy="edges"``, the
pyg attention backend: no GPU here) run three ways per case: unsharded (no group), on anemoi's own
``anemoi.models.distributed``, and inside ``graphshard.anemoi.use_graphshard()``, recording the
outputs and the gradients of every input and weight, which modules' objects are whose inside and
after the block, and how many ``graphshard::*`` operators the profiler saw in each sharded run.
``rank_all`` runs the cases of one world size (of one layer or both) in one spawn.

Not a test module: conftest.run_ranks imports it on the spawned ranks (the test directory is on
their sys.path); the test modules import it after checking that anemoi-models is importable.
"""

from __future__ import annotations

import copy
import time

import anemoi.models.distributed.graph as an_graph
import anemoi.models.distributed.khop_edges as an_khop
import anemoi.models.distributed.shapes as an_shapes
import anemoi.models.layers.mapper as an_mapper
import anemoi.models.layers.processor as an_processor
import torch

import graphshard.anemoi as ga
import graphshard.distributed.khop_edges as gs_khop
import graphshard.distributed.shapes as gs_shapes

# anemoi's originals, captured at import (before any swap)
AN_SHARD_GRAPH_TO_LOCAL = an_khop.shard_graph_to_local
AN_GRAPH_PARTITION = an_khop.GraphPartition
AN_BIPARTITE_INFO = an_shapes.BipartiteGraphShardInfo
AN_GRAPH_INFO = an_shapes.GraphShardInfo
AN_SHARD_TENSOR = an_graph.shard_tensor
AN_SHARD_EDGES_1HOP = an_khop.shard_edges_1hop


# ---- data and layers (built identically on every rank) ------------------------------------------


def balanced(n, p):
    return [n // p + (1 if i < n % p else 0) for i in range(p)]


def _piece(t, dim, sizes, rank):
    start = sum(sizes[:rank])
    return t.narrow(dim, start, sizes[rank])


def bipartite_graph(seed, n_src=30, n_dst=20, n_edges=100, sort=True):
    g = torch.Generator().manual_seed(seed)
    dst = torch.randint(0, n_dst, (n_edges,), generator=g)
    src = torch.randint(0, n_src, (n_edges,), generator=g)
    if sort:
        dst = torch.sort(dst, stable=True).values
    return torch.stack([src, dst])


def _symmetric_graph(seed, n=20, n_pairs=50):
    """Undirected (both directions), no self loops, dst-sorted: a processor graph, whose halo
    exchange relies on symmetry."""
    g = torch.Generator().manual_seed(seed)
    pairs = set()
    while len(pairs) < n_pairs:
        a, b = torch.randint(0, n, (2,), generator=g).tolist()
        if a != b:
            pairs.add((min(a, b), max(a, b)))
    edges = sorted({(a, b) for a, b in pairs} | {(b, a) for a, b in pairs}, key=lambda e: (e[1], e[0]))
    return torch.tensor(edges, dtype=torch.long).t().contiguous()


def _randn(seed, *shape, dtype):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def _make_mapper(seed, num_chunks):
    torch.manual_seed(seed)
    return an_mapper.GraphTransformerForwardMapper(
        in_channels_src=3,
        in_channels_dst=4,
        num_channels=16,
        num_chunks=num_chunks,
        num_heads=2,
        mlp_hidden_ratio=2.0,
        edge_dim=5,
        shard_strategy="edges",
        graph_attention_backend="pyg",
    )


def _make_processor(seed):
    torch.manual_seed(seed)
    return an_processor.GraphTransformerProcessor(
        num_layers=2,
        num_channels=16,
        num_chunks=1,
        num_heads=2,
        mlp_hidden_ratio=2.0,
        edge_dim=5,
        layer_kernels=None,
        shard_strategy="edges",
        graph_attention_backend="pyg",
    )


def _count_graphshard_ops(fn):
    """Runs fn under the profiler; returns (fn's result, number of graphshard:: operator calls)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile

    with profile(activities=[ProfilerActivity.CPU], acc_events=True) as prof:
        out = fn()
    return out, sum(1 for e in prof.events() if e.name.startswith("graphshard::"))


def _grads(model, inputs):
    out = {f"grad_{k}": v.grad.detach().clone() for k, v in inputs.items() if v.grad is not None}
    out.update({f"w_{n}": p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None})
    return out


# ---- the cases -------------------------------------------------------------------------------------


def _mapper_case(rank, w, group, *, seed, num_chunks, sorted_edges, src_sharded, keep_sharded, dtype):
    """Runs one mapper case three ways: unsharded reference, anemoi sharded, graphshard sharded."""
    n_src, n_dst, n_edges = 30, 20, 100
    edge_index = bipartite_graph(seed, n_src, n_dst, n_edges, sort=sorted_edges)
    xs_full = _randn(seed + 1, n_src, 3, dtype=dtype)
    xd_full = _randn(seed + 2, n_dst, 4, dtype=dtype)
    ea_full = _randn(seed + 3, n_edges, 5, dtype=dtype)
    w_out = _randn(seed + 4, n_dst, 16, dtype=dtype)
    src_sizes = balanced(n_src, w) if src_sharded else None
    dst_sizes = balanced(n_dst, w)
    base = _make_mapper(seed, num_chunks).to(dtype)

    def run(group_, sharded, info_cls):
        model = copy.deepcopy(base)
        xs = (_piece(xs_full, 0, src_sizes, rank) if (sharded and src_sharded) else xs_full).clone()
        inputs = {"x_src": xs.requires_grad_(), "x_dst": xd_full.clone().requires_grad_()}
        inputs["edge_attr"] = ea_full.clone().requires_grad_()
        info = info_cls(src_nodes=src_sizes if sharded else None)
        keep = keep_sharded and sharded
        _, out = model(
            (inputs["x_src"], inputs["x_dst"]),
            batch_size=1,
            shard_info=info,
            edge_attr=inputs["edge_attr"],
            edge_index=edge_index,
            model_comm_group=group_,
            keep_x_dst_sharded=keep,
            edges_are_dst_sorted=sorted_edges,
        )
        wo = _piece(w_out, 0, dst_sizes, rank) if keep else w_out
        (out * wo).sum().backward()
        return {"out": out.detach().clone(), **_grads(model, inputs)}, keep

    ref, _ = run(None, False, AN_BIPARTITE_INFO)
    (an, keep), n_ops_anemoi = _count_graphshard_ops(lambda: run(group, True, AN_BIPARTITE_INFO))
    with ga.use_graphshard():
        inside = {
            "khop_is_gs": an_khop.shard_graph_to_local is gs_khop.shard_graph_to_local,
            "mapper_is_gs": an_mapper.shard_graph_to_local is gs_khop.shard_graph_to_local,
            "mapper_info_is_gs": an_mapper.BipartiteGraphShardInfo is gs_shapes.BipartiteGraphShardInfo,
        }
        (gs, _), n_ops = _count_graphshard_ops(lambda: run(group, True, an_mapper.BipartiteGraphShardInfo))
    after = {
        "khop_is_an": an_khop.shard_graph_to_local is AN_SHARD_GRAPH_TO_LOCAL,
        "mapper_is_an": an_mapper.shard_graph_to_local is AN_SHARD_GRAPH_TO_LOCAL,
        "mapper_info_is_an": an_mapper.BipartiteGraphShardInfo is AN_BIPARTITE_INFO,
    }
    # the reference, in the sharded layout: the rank's piece of what is sharded
    ref_local = dict(ref)
    if keep:
        ref_local["out"] = _piece(ref["out"], 0, dst_sizes, rank)
    if src_sharded:
        ref_local["grad_x_src"] = _piece(ref["grad_x_src"], 0, src_sizes, rank)
    return _finish(an, gs, ref_local, inside, after, n_ops, n_ops_anemoi)


def _processor_case(rank, w, group, *, seed, sorted_edges, dtype):
    n = 20
    edge_index = _symmetric_graph(seed, n)
    n_edges = edge_index.shape[1]
    if not sorted_edges:
        perm = torch.randperm(n_edges, generator=torch.Generator().manual_seed(seed + 9))
        edge_index = edge_index[:, perm].contiguous()
    x_full = _randn(seed + 1, n, 16, dtype=dtype)
    ea_full = _randn(seed + 2, n_edges, 5, dtype=dtype)
    w_out = _randn(seed + 3, n, 16, dtype=dtype)
    sizes = balanced(n, w)
    base = _make_processor(seed).to(dtype)

    def run(group_, sharded, info_cls):
        model = copy.deepcopy(base)
        x = (_piece(x_full, 0, sizes, rank) if sharded else x_full).clone().requires_grad_()
        inputs = {"x": x, "edge_attr": ea_full.clone().requires_grad_()}
        info = info_cls(nodes=sizes if sharded else None)
        out = model(
            inputs["x"],
            1,
            info,
            inputs["edge_attr"],
            edge_index,
            model_comm_group=group_,
            edges_are_dst_sorted=sorted_edges,
        )
        wo = _piece(w_out, 0, sizes, rank) if sharded else w_out
        (out * wo).sum().backward()
        return {"out": out.detach().clone(), **_grads(model, inputs)}

    ref = run(None, False, AN_GRAPH_INFO)
    an, n_ops_anemoi = _count_graphshard_ops(lambda: run(group, True, AN_GRAPH_INFO))
    with ga.use_graphshard():
        inside = {
            "khop_is_gs": an_khop.shard_edges_1hop is gs_khop.shard_edges_1hop,
            "processor_is_gs": an_processor.shard_edges_1hop is gs_khop.shard_edges_1hop,
            "processor_info_is_gs": an_processor.GraphShardInfo is gs_shapes.GraphShardInfo,
        }
        gs, n_ops = _count_graphshard_ops(lambda: run(group, True, an_processor.GraphShardInfo))
    after = {
        "processor_is_an": an_processor.shard_edges_1hop is AN_SHARD_EDGES_1HOP,
        "processor_info_is_an": an_processor.GraphShardInfo is AN_GRAPH_INFO,
    }
    ref_local = dict(ref)
    ref_local["out"] = _piece(ref["out"], 0, sizes, rank)
    ref_local["grad_x"] = _piece(ref["grad_x"], 0, sizes, rank)
    return _finish(an, gs, ref_local, inside, after, n_ops, n_ops_anemoi)


def _finish(an, gs, ref_local, inside, after, n_ops, n_ops_anemoi):
    """Weights' gradients are per-rank summands: their sum over ranks is the unsharded one."""
    import torch.distributed as dist

    sums = {}
    for tag, res in (("anemoi", an), ("graphshard", gs)):
        for k, v in res.items():
            if k.startswith("w_"):
                s = v.clone()
                dist.all_reduce(s)  # the world group, plain torch: the sum of the summands
                sums[(tag, k)] = s
    return {
        "anemoi": an,
        "graphshard": gs,
        "ref": ref_local,
        "anemoi_wsum": {k: v for (t, k), v in sums.items() if t == "anemoi"},
        "graphshard_wsum": {k: v for (t, k), v in sums.items() if t == "graphshard"},
        "inside": inside,
        "after": after,
        "graphshard_ops": n_ops,
        "graphshard_ops_in_anemoi_run": n_ops_anemoi,
    }


def _mixing_case(rank, w, group):
    """anemoi's dataclass instances into graphshard's functions, and graphshard's into anemoi's."""
    edge_index = bipartite_graph(7)
    f32 = torch.float32
    xs, xd, ea = _randn(1, 30, 3, dtype=f32), _randn(2, 20, 4, dtype=f32), _randn(3, 100, 5, dtype=f32)
    out = {}
    for name, (part_cls, info_cls) in {
        "anemoi_objects": (AN_GRAPH_PARTITION, AN_BIPARTITE_INFO),
        "graphshard_objects": (gs_khop.GraphPartition, gs_shapes.BipartiteGraphShardInfo),
    }.items():
        info = info_cls()
        p_an = an_khop.build_graph_partition(edge_index, w, (30, 20))
        part = part_cls(p_an.num_nodes, p_an.num_edges, p_an.num_parts, p_an.dst_splits, p_an.edge_splits)
        p_gs = gs_khop.build_graph_partition_from_shard_info(edge_index, (xs, xd), info, group)
        res = {"partition_fields_equal": (p_gs.num_nodes, p_gs.num_edges, p_gs.num_parts, p_gs.dst_splits,
                                          p_gs.edge_splits) == (tuple(p_an.num_nodes), p_an.num_edges,
                                                                p_an.num_parts, p_an.dst_splits, p_an.edge_splits)}
        for impl, fn in (("anemoi", AN_SHARD_GRAPH_TO_LOCAL), ("graphshard", gs_khop.shard_graph_to_local)):
            (s, d), e, i, new_info, _ = fn(part, (xs, xd), ea, edge_index, info, group)
            res[impl] = (s, d, e, i, new_info.src_nodes, new_info.dst_nodes, new_info.edges)
        out[name] = res
    return out


def rank_all(rank, world_size, layers=("mapper", "processor")):
    """Every case of one world size of the given layers, in one spawn (a spawn costs seconds):
    "mapper" (three float32 cases, the float64 one, and the dataclass mixing), "processor" (two
    float32 cases)."""
    import logging

    import torch.distributed as dist

    logging.getLogger("anemoi").setLevel(logging.ERROR)  # "triton is not available": pyg is asked for
    torch.manual_seed(0)
    group = dist.new_group(list(range(world_size)))  # a model_comm_group as anemoi's trainer makes
    t0 = time.monotonic()
    res = {}
    mixing = None
    f32 = torch.float32
    if "mapper" in layers:
        res["mapper_sorted"] = _mapper_case(rank, world_size, group, seed=11, num_chunks=1, sorted_edges=True,
                                            src_sharded=False, keep_sharded=False, dtype=f32)
        res["mapper_chunks3_src_sharded_keep_sharded"] = _mapper_case(
            rank, world_size, group, seed=12, num_chunks=3, sorted_edges=True, src_sharded=True, keep_sharded=True,
            dtype=f32)
        res["mapper_unsorted_chunks2"] = _mapper_case(rank, world_size, group, seed=13, num_chunks=2,
                                                      sorted_edges=False, src_sharded=False, keep_sharded=False,
                                                      dtype=f32)
    if "processor" in layers:
        res["processor_sorted"] = _processor_case(rank, world_size, group, seed=21, sorted_edges=True, dtype=f32)
        res["processor_unsorted"] = _processor_case(rank, world_size, group, seed=22, sorted_edges=False,
                                                    dtype=f32)
    if "mapper" in layers:
        prev = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)  # anemoi's layers allocate some buffers in the default dtype
        try:
            res["mapper_float64"] = _mapper_case(rank, world_size, group, seed=14, num_chunks=2,
                                                 sorted_edges=True, src_sharded=True, keep_sharded=False,
                                                 dtype=torch.float64)
        finally:
            torch.set_default_dtype(prev)
        mixing = _mixing_case(rank, world_size, group)
    return {"cases": res, "mixing": mixing, "seconds": time.monotonic() - t0}
