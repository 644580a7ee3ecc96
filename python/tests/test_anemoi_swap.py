"""graphshard.anemoi's patch mechanics, in this process, without ranks.

``use_graphshard()`` as a plain call and as a context manager (restoring on an exception),
nesting and out-of-order restores, idempotence, exact restoring (every attribute of every anemoi
module, by identity), what it leaves untouched, modules imported while swapped, and graphshard's
GraphPartition carrying the private helpers anemoi's code calls.

The swap on real layers, sharded over spawned ranks: test_anemoi.py (W = 2), test_anemoi_w4.py
(W = 4).
"""

from __future__ import annotations

import sys
import types

import pytest
import torch

pytest.importorskip(
    "anemoi.models.layers.mapper",
    reason="anemoi-models (with anemoi-utils, hydra-core, omegaconf, antlr4, PyYAML) is not importable",
)
pytest.importorskip("anemoi.models.layers.processor", reason="anemoi.models.layers.processor is not importable")

import anemoi.models.distributed.graph as an_graph  # noqa: E402
import anemoi.models.distributed.khop_edges as an_khop  # noqa: E402
import anemoi.models.layers.mapper as an_mapper  # noqa: E402
import anemoi.models.layers.processor as an_processor  # noqa: E402

import graphshard.anemoi as ga  # noqa: E402
import graphshard.distributed.graph as gs_graph  # noqa: E402
import graphshard.distributed.khop_edges as gs_khop  # noqa: E402
import graphshard.distributed.shapes as gs_shapes  # noqa: E402

# anemoi's originals, captured at its import (before any swap)
from anemoi_cases import (  # noqa: E402
    AN_BIPARTITE_INFO,
    AN_GRAPH_PARTITION,
    AN_SHARD_GRAPH_TO_LOCAL,
    AN_SHARD_TENSOR,
    bipartite_graph,
)


def _snapshot():
    """Every attribute of every anemoi module (identity), to check restoring is exact."""
    return {
        (name, k): id(v)
        for name, mod in list(sys.modules.items())
        if isinstance(mod, types.ModuleType) and (name == "anemoi" or name.startswith("anemoi."))
        for k, v in list(vars(mod).items())
    }


@pytest.fixture
def clean():
    ga.restore()
    yield
    ga.restore()


def test_plain_call_and_restore_are_exact(clean):
    before = _snapshot()
    left_before = ga.left_untouched()
    h = ga.use_graphshard()
    assert ga.left_untouched() == left_before
    assert ga.is_active() and h.active
    assert an_khop.shard_graph_to_local is gs_khop.shard_graph_to_local
    assert an_mapper.shard_graph_to_local is gs_khop.shard_graph_to_local
    assert an_mapper.GraphPartition is gs_khop.GraphPartition
    assert an_graph.shard_tensor is gs_graph.shard_tensor
    assert an_processor.GraphShardInfo is gs_shapes.GraphShardInfo
    # the halo exchange too, in anemoi's halo module and where the processor block imported it
    import anemoi.models.distributed.halo as an_halo
    import anemoi.models.layers.block as an_block

    import graphshard.distributed.halo as gs_halo

    assert an_graph.halo_exchange is gs_graph.halo_exchange
    assert an_block.halo_exchange is gs_graph.halo_exchange
    assert an_block.build_halo_info is gs_halo.build_halo_info
    assert an_halo.HaloInfo is gs_halo.HaloInfo
    assert an_halo.shard_tensor is gs_graph.shard_tensor
    assert an_halo.GraphPartition is gs_khop.GraphPartition
    mods = {m for m, _ in h.patched}
    assert {"anemoi.models.layers.mapper", "anemoi.models.layers.processor", "anemoi.models.layers.block"} <= mods
    assert "anemoi.models.distributed.halo" in mods and "anemoi.models.distributed.primitives" not in mods
    # untouched: what graphshard lacks (anemoi's private helpers), and anemoi's collectives
    left = ga.left_untouched()
    assert "halo_exchange" not in left["anemoi.models.distributed.graph"]
    assert left["anemoi.models.distributed.primitives"] == ["<whole module>"]
    assert an_halo._node_id_to_partition_id.__module__ == "anemoi.models.distributed.halo"
    h.restore()
    assert not ga.is_active() and not h.active
    assert _snapshot() == before
    h.restore()  # idempotent
    assert _snapshot() == before


def test_context_manager_restores_on_exception(clean):
    before = _snapshot()
    with pytest.raises(KeyError):
        with ga.use_graphshard() as h:
            assert an_khop.shard_graph_to_local is gs_khop.shard_graph_to_local
            raise KeyError("boom")
    assert not h.active and not ga.is_active()
    assert _snapshot() == before
    assert an_khop.shard_graph_to_local is AN_SHARD_GRAPH_TO_LOCAL


def test_nesting_and_out_of_order_restore(clean):
    before = _snapshot()
    outer = ga.use_graphshard()
    inner = ga.use_graphshard()
    assert inner.patched == []  # nothing new to swap
    with ga.use_graphshard():
        assert an_mapper.shard_graph_to_local is gs_khop.shard_graph_to_local
    assert ga.is_active()  # the inner context manager did not undo the outer swap
    outer.restore()  # out of order: inner is still active
    assert ga.is_active() and an_mapper.shard_graph_to_local is gs_khop.shard_graph_to_local
    inner.restore()
    assert not ga.is_active() and _snapshot() == before
    # module-level restore() ends every handle
    h1, h2 = ga.use_graphshard(), ga.use_graphshard()
    ga.restore()
    assert not h1.active and not h2.active and _snapshot() == before
    h1.restore()
    assert _snapshot() == before


def test_module_imported_while_swapped_is_reverted(clean):
    name = "anemoi.models._graphshard_test_late_module"
    code = (
        "from anemoi.models.distributed.graph import shard_tensor\n"
        "from anemoi.models.distributed.shapes import BipartiteGraphShardInfo as Info\n"
    )
    try:
        with ga.use_graphshard():
            late = types.ModuleType(name)
            sys.modules[name] = late
            exec(code, vars(late))  # an import during the swap binds graphshard's objects
            assert late.shard_tensor is gs_graph.shard_tensor and late.Info is gs_shapes.BipartiteGraphShardInfo
        assert late.shard_tensor is AN_SHARD_TENSOR and late.Info is AN_BIPARTITE_INFO
        # a module that appears between an outer and a nested call, holding anemoi's objects (as
        # one whose import ran before the swap but which reached sys.modules later): the nested
        # call patches it, the last restore reverts it
        other = types.ModuleType(name + "2")
        with ga.use_graphshard():
            other.shard_tensor = AN_SHARD_TENSOR
            sys.modules[other.__name__] = other
            with ga.use_graphshard() as nested:
                assert (other.__name__, "shard_tensor") in nested.patched
                assert other.shard_tensor is gs_graph.shard_tensor
        assert other.shard_tensor is AN_SHARD_TENSOR
    finally:
        sys.modules.pop(name, None)
        sys.modules.pop(name + "2", None)


def test_graphshard_partition_has_anemoi_private_helpers():
    edge_index = bipartite_graph(3)
    a = AN_GRAPH_PARTITION(**{k: getattr(an_khop.build_graph_partition(edge_index, 3, (30, 20)), k)
                              for k in ("num_nodes", "num_edges", "num_parts", "dst_splits", "edge_splits")})
    g = gs_khop.build_graph_partition(edge_index, 3, (30, 20))
    for i in range(3):
        assert g._get_dst_range(i) == a._get_dst_range(i)
        assert g._get_edge_range(i) == a._get_edge_range(i)
        ei = edge_index[:, a._get_edge_range(i)]
        assert torch.equal(g._relabel_dst_nodes(ei, i, in_place=False), a._relabel_dst_nodes(ei, i, in_place=False))
