"""graphshard.partition.partition_graph through the operator: every scheme renumbers the graph
into contiguous parts (permutations, tiling, the relabelled edges), a layer on the renumbered
graph un-permuted equals the layer on the input, contiguous is build_graph_partition, and bad
arguments raise ValueError. The schemes themselves are tested in C++
(props/graph/partitioners_props.cpp, partition_schemes_test.cpp)."""

import pytest
import torch

from graphshard.distributed.khop_edges import build_graph_partition
from graphshard.partition import SCHEMES
from graphshard.partition import partition_graph

N_SRC, N_DST, E = 300, 200, 1500


def graph(plain: bool):
    g = torch.Generator().manual_seed(7)
    n_src = N_DST if plain else N_SRC
    ei = torch.stack([torch.randint(0, n_src, (E,), generator=g), torch.randint(0, N_DST, (E,), generator=g)])
    coords = torch.randn(N_DST, 3, generator=g, dtype=torch.float64)
    return ei, (n_src, N_DST), coords


def layer(x_src, edge_index, edge_attr, n_dst):
    out = torch.zeros(n_dst, x_src.shape[1], dtype=x_src.dtype)
    return out.index_add_(0, edge_index[1], x_src[edge_index[0]] * edge_attr)


@pytest.mark.parametrize("plain", [False, True])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_renumbered_graph_tiles_and_computes_the_same(scheme, plain):
    ei, (n_src, n_dst), coords = graph(plain)
    before = ei.clone()
    r = partition_graph(ei, (n_src, n_dst), 4, scheme=scheme, plain=plain, dst_coords=coords)
    assert torch.equal(ei, before), "input modified"
    for perm, inverse, n in ((r.src_perm, r.src_inverse, n_src), (r.dst_perm, r.dst_inverse, n_dst)):
        assert torch.equal(perm.sort().values, torch.arange(n))
        assert torch.equal(inverse[perm], torch.arange(n))
    assert torch.equal(r.edge_perm.sort().values, torch.arange(E))
    p = r.partition
    assert (p.num_nodes, p.num_edges, p.num_parts) == ((n_src, n_dst), E, 4)
    assert sum(p.dst_splits) == n_dst and sum(p.edge_splits) == E and sum(r.src_splits) == n_src
    taken = ei[:, r.edge_perm]
    assert torch.equal(r.edge_index, torch.stack([r.src_inverse[taken[0]], r.dst_inverse[taken[1]]]))
    dst, start = r.edge_index[1], 0
    for part in range(4):
        lo = sum(p.dst_splits[:part])
        edges = dst[start:start + p.edge_splits[part]]
        assert bool(((edges >= lo) & (edges < lo + p.dst_splits[part])).all()), f"part {part}"
        start += p.edge_splits[part]
    if plain:
        assert torch.equal(r.src_perm, r.dst_perm)
    g = torch.Generator().manual_seed(3)
    x = torch.randint(-4, 5, (n_src, 2), generator=g).double()
    ea = torch.randint(-4, 5, (E, 1), generator=g).double()
    out_new = layer(x[r.src_perm], r.edge_index, ea[r.edge_perm], n_dst)
    assert torch.equal(out_new[r.dst_inverse], layer(x, ei, ea, n_dst))


def test_contiguous_is_build_graph_partition():
    ei, num_nodes, _ = graph(False)
    ei = ei[:, torch.argsort(ei[1], stable=True)]
    r = partition_graph(ei, num_nodes, 3)
    assert r.partition == build_graph_partition(ei, 3, num_nodes)
    assert torch.equal(r.edge_index, ei) and torch.equal(r.edge_perm, torch.arange(E))


def test_bad_arguments_raise_value_error():
    ei, num_nodes, coords = graph(False)
    with pytest.raises(ValueError, match="partition_scheme_from_string: name"):
        partition_graph(ei, num_nodes, 2, scheme="kmeans")
    with pytest.raises(ValueError, match="partition_graph: options.dst_coords"):
        partition_graph(ei, num_nodes, 2, scheme="hilbert")
    with pytest.raises(ValueError, match="partition_graph: options.dst_coords"):
        partition_graph(ei, num_nodes, 2, scheme="latlon_boxes", dst_coords=coords[:, :2])
    with pytest.raises(ValueError, match="partition_graph: num_parts"):
        partition_graph(ei, num_nodes, 0)
    with pytest.raises(ValueError, match="partition_graph: edge_index"):
        partition_graph(ei, (10, N_DST), 2)
    with pytest.raises(ValueError, match="partition_graph: options.plain"):
        partition_graph(ei, num_nodes, 2, plain=True)
