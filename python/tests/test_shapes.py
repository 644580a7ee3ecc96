"""graphshard.distributed.shapes (SPEC §4): shard infos, shard sizes, shapes."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from conftest import balanced
from graphshard.distributed.shapes import BipartiteGraphShardInfo
from graphshard.distributed.shapes import GraphShardInfo
from graphshard.distributed.shapes import expand_shard_sizes_to_shapes
from graphshard.distributed.shapes import get_shard_sizes


def test_graph_shard_info_value_semantics():
    a = GraphShardInfo(nodes=[3, 2], edges=[5, 4])
    assert a == GraphShardInfo([3, 2], [5, 4])
    assert a != GraphShardInfo(nodes=[3, 2])
    assert a.nodes_are_sharded() and a.edges_are_sharded()
    empty = GraphShardInfo()
    assert empty.nodes is None and empty.edges is None
    assert not empty.nodes_are_sharded() and not empty.edges_are_sharded()
    assert GraphShardInfo(edges=[1]).edges_are_sharded() and not GraphShardInfo(edges=[1]).nodes_are_sharded()
    assert "GraphShardInfo(nodes=[3, 2], edges=[5, 4])" == repr(a)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.nodes = [5]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del a.edges


def test_bipartite_graph_shard_info_value_semantics():
    b = BipartiteGraphShardInfo(src_nodes=[2, 2], dst_nodes=None, edges=[7, 1])
    assert b == BipartiteGraphShardInfo([2, 2], None, [7, 1])
    assert b != BipartiteGraphShardInfo([2, 2], [1, 1], [7, 1])
    assert b.src_is_sharded() and not b.dst_is_sharded() and b.edges_are_sharded()
    assert b != GraphShardInfo([2, 2], [7, 1])  # different classes are never equal
    assert dataclasses.replace(b, dst_nodes=[3, 3]).dst_nodes == [3, 3] and b.dst_nodes is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        b.src_nodes = None
    assert [f.name for f in dataclasses.fields(b)] == ["src_nodes", "dst_nodes", "edges"]


def test_shard_info_hashing():
    # Frozen dataclasses hash by their fields: equal infos hash alike, usable as dict keys...
    assert hash(GraphShardInfo()) == hash(GraphShardInfo())
    assert hash(BipartiteGraphShardInfo()) == hash(BipartiteGraphShardInfo(None, None, None))
    assert {BipartiteGraphShardInfo(): 1}[BipartiteGraphShardInfo()] == 1
    # ...as long as the fields are: sizes are lists (ShardSizes = list[int] | None, as in
    # anemoi-models), which are not hashable, so an info holding sizes is not either.
    with pytest.raises(TypeError, match="unhashable"):
        hash(GraphShardInfo(nodes=[1, 2]))
    with pytest.raises(TypeError, match="unhashable"):
        hash(BipartiteGraphShardInfo(edges=[1]))


@given(st.integers(0, 40), st.integers(1, 6), st.lists(st.integers(0, 4), min_size=0, max_size=3), st.data())
def test_get_shard_sizes_none_group_and_expand(n, parts, other, data):
    shape = other + [n]
    t = torch.empty(shape)
    d = len(shape) - 1
    dim = data.draw(st.sampled_from([d, d - len(shape)]))
    assert get_shard_sizes(t, dim) == [n]  # a None group: one rank, never None
    assert get_shard_sizes(t, dim, None) == [n]
    sizes = balanced(n, parts)
    shapes = expand_shard_sizes_to_shapes(t, dim, sizes)
    assert shapes == [other + [s] for s in sizes]
    assert all(isinstance(s, list) and all(isinstance(v, int) for v in s) for s in shapes)


def test_balanced_examples():
    # SPEC §0's examples, through a tensor's dim and the shape helper.
    assert expand_shard_sizes_to_shapes(torch.empty(10, 2), 0, balanced(10, 4)) == [[3, 2], [3, 2], [2, 2], [2, 2]]
    assert balanced(10, 4) == [3, 3, 2, 2] and balanced(2, 4) == [1, 1, 0, 0]
    assert expand_shard_sizes_to_shapes(torch.empty(2, 5), -1, []) == []


@pytest.mark.parametrize("dim", [2, -3, 7])
def test_get_shard_sizes_bad_dim(dim):
    with pytest.raises(ValueError, match=r"^graphshard::get_shard_sizes: dim: expected a dim in \[-2, 2\), got " + str(dim)):
        get_shard_sizes(torch.empty(4, 3), dim)


def test_get_shard_sizes_zero_dim_tensor():
    with pytest.raises(ValueError, match=r"graphshard::get_shard_sizes: dim: expected"):
        get_shard_sizes(torch.tensor(1.0), 0)


def test_expand_shard_sizes_bad_dim():
    with pytest.raises(ValueError, match=r"graphshard::expand_shard_sizes_to_shapes: dim: expected"):
        expand_shard_sizes_to_shapes(torch.empty(4, 3), 2, [2, 2])
