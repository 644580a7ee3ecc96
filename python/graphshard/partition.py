"""Locality-aware partitioning of a graph's nodes over ranks (C++: ``graphshard/partitioners.h``).

Not in anemoi-models, whose partitions are balanced id ranges. :func:`partition_graph` chooses
each rank's nodes by a scheme and renumbers the graph so that every part is a contiguous id
range again: :mod:`graphshard.distributed.khop_edges` and :mod:`graphshard.distributed.halo`
then apply unchanged to the renumbered graph. Permute the features once, and the results back::

    g = partition_graph(edge_index, (n, n), world_size, scheme="metis", plain=True)
    x_new = x[g.src_perm]
    edge_attr_new = edge_attr[g.edge_perm]
    # ... g.partition and g.edge_index with shard_graph_to_local (sources sharded by
    # g.src_splits, destinations by g.partition.dst_splits), or build_halo_info ...
    out = out_new[g.dst_inverse]            # back in the caller's numbering

Schemes (destination parts; ties by node id, so results are deterministic and the same for any
thread count):

- ``contiguous``: balanced id ranges, ids unchanged (what anemoi-models does).
- ``edge_balanced``: contiguous id ranges with equal edge counts, then equal node counts.
- ``hilbert``: destinations ordered along a 3-D Hilbert curve through ``dst_coords``, cut as
  edge_balanced cuts.
- ``latlon_boxes``: latitude bands x longitude boxes of ``dst_coords`` (as PhysicsNeMo cuts
  GraphCast's mesh), edges then nodes balanced.
- ``metis``: METIS k-way on the destinations' adjacency, edges and nodes balanced, ``seed``.

A bipartite graph's sources (every scheme but contiguous) follow their destinations: each goes to
the part holding most of its edges' destinations. ``plain=True`` (a processor's mesh,
``n_src == n_dst``) renumbers sources as destinations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from torch import Tensor

from graphshard._ops import ops
from graphshard.distributed.khop_edges import GraphPartition

SCHEMES = ("contiguous", "edge_balanced", "hilbert", "latlon_boxes", "metis")


@dataclass(frozen=True)
class RenumberedGraph:
    """A graph renumbered so that every part of its partition is a contiguous id range.

    ``partition``: of the renumbered graph (part i: destinations ``range(dst_splits, i)``, the
    edges ``range(edge_splits, i)``); ``src_splits``: sources per part. ``edge_index``: the
    renumbered edges, dst-sorted (input dtype and device). ``*_perm``: renumbered id i is input
    id ``perm[i]``; ``*_inverse``: input id j is renumbered id ``inverse[j]`` (int64).
    """

    partition: GraphPartition
    src_splits: list[int]
    edge_index: Tensor
    src_perm: Tensor
    dst_perm: Tensor
    src_inverse: Tensor
    dst_inverse: Tensor
    edge_perm: Tensor


def partition_graph(
    edge_index: Tensor,
    num_nodes: tuple[int, int],
    num_parts: int,
    scheme: str = "contiguous",
    plain: bool = False,
    dst_coords: Optional[Tensor] = None,
    seed: int = 0,
) -> RenumberedGraph:
    """Partition a graph into ``num_parts`` parts by ``scheme`` and renumber it.

    Parameters
    ----------
    edge_index : Tensor
        ``[2, E]`` int32/int64 (sources, destinations), any order, ids within ``num_nodes``.
    num_nodes : tuple[int, int]
        ``(n_src, n_dst)``.
    num_parts : int
        Number of parts (the world size).
    scheme : str
        One of :data:`SCHEMES`.
    plain : bool
        Sources and destinations are one node set, renumbered alike.
    dst_coords : Tensor, optional
        ``[n_dst, 3]`` floating coordinates of the destinations (points on the sphere):
        required by ``hilbert`` and ``latlon_boxes``.
    seed : int
        METIS's random seed.

    Returns
    -------
    RenumberedGraph

    Raises ``ValueError`` (graphshard's message) on bad arguments: an unknown scheme, ids out of
    range, ``plain`` with ``n_src != n_dst``, missing or malformed coordinates.
    """
    (renumbered, src_perm, dst_perm, src_inverse, dst_inverse, edge_perm, dst_splits, edge_splits,
     src_splits) = ops.partition_graph(edge_index, list(num_nodes), num_parts, scheme, plain,
                                       dst_coords, seed)
    partition = GraphPartition((int(num_nodes[0]), int(num_nodes[1])), int(edge_index.shape[1]),
                               num_parts, list(dst_splits), list(edge_splits))
    return RenumberedGraph(partition, list(src_splits), renumbered, src_perm, dst_perm, src_inverse,
                           dst_inverse, edge_perm)
