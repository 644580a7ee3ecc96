"""Mirror of ``anemoi.models.distributed.halo`` (SPEC §3b): halo exchange metadata.

A plain graph (``n_src == n_dst``) is cut by a :class:`~graphshard.distributed.khop_edges.GraphPartition`
into one contiguous node range per rank; rank r owns its range and the edges whose destination
it owns. A halo node of rank r is a source of one of its edges that it does not own.
:func:`build_halo_info` computes, once, which rows each rank sends and receives;
:func:`graphshard.distributed.graph.halo_exchange` then moves exactly those rows (one all-to-all-v
each way) instead of gathering every node.

**[differs]** from anemoi-models: the send lists come from an exchange of the requests (what
rank r's edges need from rank q is what q sends r), so they are right for directed graphs too;
anemoi derives them by assuming the graph is symmetric. ``verify_halo_info`` raises ``ValueError``
on every rank (anemoi: ``AssertionError`` on the rank that saw the mismatch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor
from torch.distributed.distributed_c10d import ProcessGroup

from graphshard._ops import call
from graphshard._ops import name_of
from graphshard._ops import ops
from graphshard.distributed.khop_edges import GraphPartition
from graphshard.distributed.khop_edges import _partition_fields
from graphshard.distributed.shapes import GraphShardInfo
from graphshard.distributed.shapes import ShardSizes


@dataclass(frozen=True)
class HaloInfo:
    """Per-rank halo exchange metadata for distributed graph processing.

    Precomputed once from graph topology, reused across layers and time steps. Local numbering:
    owned (inner) nodes ``[0, num_local_nodes)``, then halo nodes
    ``[num_local_nodes, num_local_nodes + num_halo_nodes)`` ordered by source rank, then by
    global node ID within each rank.

    Parameters
    ----------
    num_local_nodes : int
        Number of inner (owned) nodes on this rank.
    num_halo_nodes : int
        Total number of halo nodes received from all other ranks.
    send_indices : tuple[Tensor, ...]
        Per-rank local indices (int64, ascending) of inner nodes to send. Length = world size.
    recv_counts : tuple[int, ...]
        Per-rank number of halo nodes to receive. Length = world size.
    recv_global_ids : tuple[Tensor, ...] | None
        Per-rank global node IDs (int64, ascending) of the halo nodes received; only with
        ``debug=True`` in :func:`build_halo_info`.
    edge_index_local : Tensor
        This rank's edges relabelled: row 0 (src) in ``[0, total_nodes)``, row 1 (dst) in
        ``[0, num_local_nodes)``; shape ``(2, num_local_edges)``.
    """

    num_local_nodes: int
    num_halo_nodes: int
    send_indices: tuple[Tensor, ...]
    recv_counts: tuple[int, ...]
    recv_global_ids: Optional[tuple[Tensor, ...]]
    edge_index_local: Tensor

    @property
    def total_nodes(self) -> int:
        """Total number of nodes (local + halo) for attention size."""
        return self.num_local_nodes + self.num_halo_nodes

    @property
    def send_counts(self) -> tuple[int, ...]:
        """Per-rank number of nodes to send."""
        return tuple(t.size(0) for t in self.send_indices)


def cache_specs(
    shard_info: GraphShardInfo,
    model_comm_group: ProcessGroup,
) -> tuple[int, int, tuple[int, ...], tuple[int, ...]]:
    """Return specs that determine whether cached halo metadata can be reused."""
    return (
        model_comm_group.size(),
        torch.distributed.get_rank(group=model_comm_group),
        tuple(shard_info.nodes or ()),
        tuple(shard_info.edges or ()),
    )


def build_halo_info(
    partition: GraphPartition,
    edge_index: Tensor,
    model_comm_group: ProcessGroup,
    edge_shard_sizes: ShardSizes = None,
    debug: bool = False,
) -> HaloInfo:
    """Build per-rank halo exchange metadata from graph partitioning (collective).

    Parameters
    ----------
    partition : GraphPartition
        Partition of the plain graph; ``partition.num_parts`` must equal the group size (read by
        attribute: anemoi-models' GraphPartition works too).
    edge_index : Tensor
        Edge index with **global** node IDs, sorted by destination: the full graph, or this
        rank's edges only when ``edge_shard_sizes`` is given (it must equal
        ``partition.edge_splits``).
    model_comm_group : ProcessGroup
        Model communication group (``None``: one rank, no halo).
    edge_shard_sizes : ShardSizes, optional
        Set when ``edge_index`` holds this rank's edges only.
    debug : bool, optional
        Keep ``recv_global_ids`` for :func:`verify_halo_info`.

    Returns
    -------
    HaloInfo
        Per-rank halo exchange metadata.
    """
    sizes = None if edge_shard_sizes is None else [int(s) for s in edge_shard_sizes]
    num_local, num_halo, send, recv, recv_ids, ei_local = call(
        ops.build_halo_info,
        *_partition_fields(partition),
        edge_index,
        name_of(model_comm_group),
        sizes,
        debug,
    )
    return HaloInfo(
        num_local_nodes=int(num_local),
        num_halo_nodes=int(num_halo),
        send_indices=tuple(send),
        recv_counts=tuple(int(c) for c in recv),
        recv_global_ids=tuple(recv_ids) if debug else None,
        edge_index_local=ei_local,
    )


def verify_halo_info(
    halo_info: HaloInfo,
    partition: GraphPartition,
    model_comm_group: ProcessGroup,
) -> None:
    """Verify that what each rank sends equals what its peer expects (collective; debugging).

    Requires ``halo_info`` built with ``debug=True``. Raises ``ValueError`` on every rank when
    any pair of ranks disagrees, naming the pair and their counts.
    """
    call(
        ops.verify_halo_info,
        int(halo_info.num_local_nodes),
        list(halo_info.send_indices),
        [int(c) for c in halo_info.recv_counts],
        [] if halo_info.recv_global_ids is None else list(halo_info.recv_global_ids),
        halo_info.edge_index_local,
        *_partition_fields(partition),
        name_of(model_comm_group),
    )
