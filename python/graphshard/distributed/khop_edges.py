"""Mirror of ``anemoi.models.distributed.khop_edges`` (SPEC §3): dst-sorted graphs, partitioned.

An edge index is an int64 (or int32) ``[2, E]`` tensor, row 0 sources, row 1 destinations;
graphs are bipartite ``(n_src, n_dst)``; *dst-sorted* means row 1 is non-decreasing. Every
function runs graphshard's C++ implementation (linear-time sorts, binary-searched partition
boundaries, mark-and-scan relabelling) through ``torch.ops.graphshard``; ids out of range are a
ValueError, never a crash; no input is modified. These functions run eagerly: their output
sizes depend on the data, so compute partitions outside a ``torch.compile``'d region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator
from typing import Optional
from typing import Tuple
from typing import Union

from torch import Tensor
from torch.distributed.distributed_c10d import ProcessGroup

from graphshard._ops import call
from graphshard._ops import name_of
from graphshard._ops import ops
from graphshard.distributed.shapes import BipartiteGraphShardInfo
from graphshard.distributed.shapes import ShardSizes

Adj = Tensor
PairTensor = Tuple[Tensor, Tensor]


def sort_edge_index_by_dst(edge_index: Adj, max_value: int = None) -> Tuple[Adj, Tensor]:
    """Sort edge indices by destination node.

    A STABLE sort; ``perm`` is the permutation applied (``sorted = edge_index[:, perm]``).
    ``max_value``: optional exclusive upper bound on destination ids (ids at or above it are a
    ValueError).
    """
    return ops.sort_edge_index_by_dst(edge_index, max_value)


def is_edge_index_dst_sorted(edge_index: Adj) -> bool:
    """Check whether edge_index is sorted by destination node (edge_index[1])."""
    return ops.is_edge_index_dst_sorted(edge_index)


class MaterialisedPartition:
    """What :meth:`GraphPartition.materialise` returns.

    It unpacks as anemoi-models' implementation returns, four values::

        (x_src, x_dst), edge_attr, edge_index, cond = partition.materialise(...)

    and names every field, ``src_ids`` (the kept global source ids) included. **[differs]**
    anemoi's annotation and implementation disagree on the tuple's length (SPEC §3); the fields
    remove the ambiguity.
    """

    __slots__ = ("x_src", "x_dst", "edge_attr", "edge_index", "src_ids", "cond")

    def __init__(self, x_src, x_dst, edge_attr, edge_index, src_ids, cond):
        self.x_src, self.x_dst, self.edge_attr = x_src, x_dst, edge_attr
        self.edge_index, self.src_ids, self.cond = edge_index, src_ids, cond

    def __iter__(self) -> Iterator:
        return iter(((self.x_src, self.x_dst), self.edge_attr, self.edge_index, self.cond))

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i):
        return tuple(self)[i]


@dataclass(frozen=True)
class GraphPartition:
    """Precomputed partitioning metadata for a graph with dst-sorted edges.

    Enables O(1) slicing for both distributed sharding and local chunking
    by exploiting the fact that edges are already sorted by destination node.

    Parameters
    ----------
    num_nodes : tuple[int, int]
        Number of (src, dst) nodes in the full graph.
    num_edges : int
        Total number of edges.
    num_parts : int
        Number of partitions (= world size for sharding, or num_parts for local chunking).
    dst_splits : list[int]
        Per-partition destination node counts.
    edge_splits : list[int]
        Per-partition edge counts (derived from dst-sorted edge structure).
    """

    num_nodes: tuple[int, int]
    num_edges: int
    num_parts: int
    dst_splits: list[int]
    edge_splits: list[int]

    def _fields(self) -> tuple:
        return _partition_fields(self)

    # anemoi-models' private helpers, which its layers call on a partition (the mapper slices its
    # output by ``chunk_partition._get_dst_range(chunk_id)``): same names, arguments and results.

    def _get_edge_range(self, partition_id: int) -> slice:
        """The slice of part ``partition_id``'s edges (anemoi-models' private helper)."""
        start = sum(self.edge_splits[:partition_id])
        return slice(start, start + self.edge_splits[partition_id])

    def _get_dst_range(self, partition_id: int) -> slice:
        """The slice of part ``partition_id``'s destinations (anemoi-models' private helper)."""
        start = sum(self.dst_splits[:partition_id])
        return slice(start, start + self.dst_splits[partition_id])

    def _relabel_dst_nodes(self, edge_index: Adj, partition_id: int, in_place: bool = True) -> Adj:
        """Destinations from global to part-local ids (anemoi-models' private helper: like it,
        in place by default, on a copy with ``in_place=False``)."""
        edge_index_ = edge_index if in_place else edge_index.clone()
        edge_index_[1] -= sum(self.dst_splits[:partition_id])
        return edge_index_

    def materialise(
        self,
        partition_id: int,
        x: PairTensor,
        edge_attr: Tensor,
        edge_index: Adj,
        cond: Optional[PairTensor] = None,
    ) -> MaterialisedPartition:
        """Materialise a single partition by slicing nodes, edges and conditioning.

        Pure local operation — no communication. Suitable for chunking within
        a single device. Destinations are relabelled to part-local ids, and only the sources
        the part's edges use are kept (ascending global id) and relabelled, in a new edge index.

        Parameters
        ----------
        partition_id : int
            The partition to materialise.
        x : PairTensor
            Node features (src, dst).
        edge_attr : Tensor
            Edge attributes.
        edge_index : Adj
            Edge indices (assumed dst-sorted).
        cond : tuple[Tensor, Tensor], optional
            Conditioning tensors (cond_src, cond_dst).

        Returns
        -------
        MaterialisedPartition
            Unpacks as (x_src_subset, x_dst_subset), edge_attr_subset, edge_index_relabeled,
            cond subset (or None); ``src_ids`` is a field.
        """
        x_src, x_dst = x
        cond_src, cond_dst = cond if cond is not None else (None, None)
        xs, xd, ea, ei, ids, cs, cd = ops.materialise(
            *self._fields(), partition_id, x_src, x_dst, edge_attr, edge_index, cond_src, cond_dst
        )
        return MaterialisedPartition(xs, xd, ea, ei, ids, None if cond is None else (cs, cd))


def _partition_fields(partition) -> tuple:
    """The operators' view of a partition. Read by attribute, so any object with the five fields
    works: graphshard's GraphPartition, or anemoi-models' own (see :mod:`graphshard.anemoi`)."""
    p = partition
    return (
        [int(n) for n in p.num_nodes],
        int(p.num_edges),
        int(p.num_parts),
        [int(n) for n in p.dst_splits],
        [int(n) for n in p.edge_splits],
    )


def _partition(fields) -> GraphPartition:
    num_nodes, num_edges, num_parts, dst_splits, edge_splits = fields
    return GraphPartition(tuple(num_nodes), num_edges, num_parts, list(dst_splits), list(edge_splits))


def build_graph_partition(edge_index: Adj, num_parts: int, num_nodes: tuple[int, int]) -> GraphPartition:
    """Build graph partitioning information from a dst-sorted edge_index.

    ``dst_splits`` = balanced(n_dst, num_parts); ``edge_splits[i]`` = the edges whose destination
    lies in part i's range, found by one binary search per boundary (no pass over the edges).

    Parameters
    ----------
    edge_index : Adj
        The edge index tensor (must be sorted by destination node).
    num_parts : int
        The number of chunks to partition the graph into.
    num_nodes : tuple[int, int]
        The number of (src, dst) nodes in the graph.

    Returns
    -------
    GraphPartition
        The graph partitioning information.
    """
    return _partition(ops.build_graph_partition(edge_index, num_parts, list(num_nodes)))


def build_graph_partition_from_shard_info(
    edge_index: Adj,
    x: PairTensor,
    shard_info: BipartiteGraphShardInfo,
    model_comm_group: Optional[ProcessGroup] = None,
) -> GraphPartition:
    """Build a GraphPartition for distributed sharding from current shard metadata.

    Derives num_nodes from shard_info and tensor shapes, and sets num_parts
    to the communication group size.

    Parameters
    ----------
    edge_index : Adj
        The edge index tensor (must be sorted by destination node).
    x : PairTensor
        Node features (src, dst), used to infer sizes when not sharded.
    shard_info : BipartiteGraphShardInfo
        Current shard metadata.
    model_comm_group : ProcessGroup, optional
        Model communication group.

    Returns
    -------
    GraphPartition
        The graph partitioning information.
    """
    x_src, x_dst = x
    s = shard_info
    return _partition(
        ops.build_graph_partition_from_shard_info(
            edge_index, x_src, x_dst, s.src_nodes, s.dst_nodes, s.edges, name_of(model_comm_group)
        )
    )


def ensure_edges_are_dst_sorted(
    edge_attr: Tensor,
    edge_index: Adj,
    *,
    num_dst: int,
    edges_are_sharded: bool,
    model_comm_group: ProcessGroup | None = None,
    edges_are_dst_sorted: bool = True,
) -> tuple[Tensor, Adj]:
    """Ensure edge tensors are dst-sorted before GraphTransformer attention.

    Sorted (the flag): both returned unchanged. Otherwise a stable sort by destination, with
    edge_attr permuted alike; sharded edges in a distributed group are a ValueError (sorting a
    shard would need a gather).
    """
    return tuple(
        call(
            ops.ensure_edges_are_dst_sorted,
            edge_attr,
            edge_index,
            num_dst,
            edges_are_sharded,
            name_of(model_comm_group),
            edges_are_dst_sorted,
        )
    )


def shard_edges_1hop(
    edge_attr: Tensor,
    edge_index: Adj,
    src_size: int,
    dst_size: int,
    model_comm_group: Optional[ProcessGroup],
    edges_are_dst_sorted: bool = True,
) -> tuple[Tensor, Adj, ShardSizes]:
    """Sort and shard edges for 1-hop sharding.

    Parameters
    ----------
    edge_attr : Tensor
        Edge attributes.
    edge_index : Adj
        Edge index.
    src_size : int
        Number of source nodes.
    dst_size : int
        Number of destination nodes.
    model_comm_group : ProcessGroup, optional
        Model communication group.
    edges_are_dst_sorted : bool, optional
        Whether `edge_index` and `edge_attr` are already ordered by destination node.
        Edges from graph providers already are. Pass False for custom full-graph
        edges that are not ordered this way. If edges are already sharded, each rank
        is expected to already have the right edges for its local destination nodes.

    Returns
    -------
    tuple[Tensor, Adj, ShardSizes]
        Sharded edge_attr, sharded edge_index, and edge_shard_sizes.
    """
    ea, ei, sizes = call(
        ops.shard_edges_1hop,
        edge_attr,
        edge_index,
        src_size,
        dst_size,
        name_of(model_comm_group),
        edges_are_dst_sorted,
    )
    return ea, ei, None if sizes is None else list(sizes)


def shard_graph_to_local(
    partition: GraphPartition,
    x: PairTensor,
    edge_attr: Tensor,
    edge_index: Adj,
    shard_info: BipartiteGraphShardInfo,
    model_comm_group: Optional[ProcessGroup] = None,
    cond: Optional[PairTensor] = None,
    src_exchange: str = "all_gather",
) -> tuple[PairTensor, Tensor, Adj, BipartiteGraphShardInfo, Optional[PairTensor]]:
    """Shard graph tensors to the local rank using precomputed partition metadata.

    Handles all communication (sync src, shard dst/edges) and returns
    the local subgraph with updated shard metadata. The gradient of ``x_src`` is complete on
    every rank (the sync reduces it), which makes a sharded layer equal to the unsharded one.

    Parameters
    ----------
    partition : GraphPartition
        Precomputed partition metadata (read by attribute: anemoi-models' GraphPartition works too).
    x : PairTensor
        Node features (src, dst).
    edge_attr : Tensor
        Edge attributes.
    edge_index : Adj
        Edge indices (assumed dst-sorted).
    shard_info : BipartiteGraphShardInfo
        Current shard metadata (read by attribute: anemoi-models' class works too).
    model_comm_group : ProcessGroup, optional
        Model communication group.
    cond : tuple[Tensor, Tensor], optional
        Conditioning tensors (cond_src, cond_dst).
    src_exchange : str
        How sharded sources reach the rank (graphshard only; anemoi has no such argument):
        ``"all_gather"`` (default, as anemoi: every source on every rank) or ``"halo"`` (each
        rank receives only the rows its edges use, from their owners, in one all-to-all-v; the
        backward returns each row's gradient to its owner). Same output and gradients.

    Returns
    -------
    tuple[PairTensor, Tensor, Adj, BipartiteGraphShardInfo, Optional[PairTensor]]
        Sharded (x_src_local, x_dst), edge_attr, edge_index, updated shard_info,
        cond subset (or None).
    """
    x_src, x_dst = x
    cond_src, cond_dst = cond if cond is not None else (None, None)
    s = shard_info
    xs, xd, ea, ei, src_nodes, dst_nodes, edges, cs, cd = call(
        ops.shard_graph_to_local,
        *_partition_fields(partition),
        x_src,
        x_dst,
        edge_attr,
        edge_index,
        s.src_nodes,
        s.dst_nodes,
        s.edges,
        name_of(model_comm_group),
        cond_src,
        cond_dst,
        src_exchange,
    )

    def opt(v):
        return None if v is None else list(v)

    info = BipartiteGraphShardInfo(src_nodes=opt(src_nodes), dst_nodes=opt(dst_nodes), edges=opt(edges))
    return (xs, xd), ea, ei, info, None if cond is None else (cs, cd)


def sort_edges_1hop_chunks(
    num_nodes: Union[int, tuple[int, int]],
    edge_attr: Tensor,
    edge_index: Adj,
    num_chunks: int,
    edges_are_dst_sorted: bool = True,
) -> tuple[list[Tensor], list[Adj]]:
    """Split edges into 1-hop neighbourhood chunks.

    Chunk i holds the edges whose destination lies in part i of balanced(n_dst, num_chunks), in
    input order; ids are not relabelled. Supports two paths: - Fast path
    (edges_are_dst_sorted=True): O(1) slicing using precomputed partition splits. - Slow path
    (edges_are_dst_sorted=False): explicit subgraph extraction per chunk.

    Parameters
    ----------
    num_nodes : Union[int, tuple[int, int]]
        Number of target nodes in the graph, or tuple (src, dst) for a bipartite graph.
    edge_attr : Tensor
        Edge attributes.
    edge_index : Adj
        Edge index.
    num_chunks : int
        Number of chunks to split into.
    edges_are_dst_sorted : bool, optional
        Whether `edge_index` and `edge_attr` are already ordered by destination node.

    Returns
    -------
    tuple[list[Tensor], list[Adj]]
        List of edge attribute chunks and edge index chunks.
    """
    nodes = [num_nodes] if isinstance(num_nodes, int) else list(num_nodes)
    attrs, indices = ops.sort_edges_1hop_chunks(nodes, edge_attr, edge_index, num_chunks, edges_are_dst_sorted)
    return list(attrs), list(indices)


def drop_unconnected_src_nodes(
    x_src: Tensor, edge_index: Adj, num_nodes: tuple[int, int]
) -> tuple[Tensor, Adj, Tensor]:
    """Drop unconnected nodes from x_src and relabel edges.

    Parameters
    ----------
    x_src : Tensor
        Source node features.
    edge_index : Adj
        Edge index.
    num_nodes : tuple[int, int]
        Number of nodes in graph (src, dst).

    Returns
    -------
    tuple[Tensor, Adj, Tensor]
        Reduced node features, relabeled edge index, and indices of connected source nodes.
    """
    return tuple(ops.drop_unconnected_src_nodes(x_src, edge_index, list(num_nodes)))
