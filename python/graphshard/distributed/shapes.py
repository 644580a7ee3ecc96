"""Mirror of ``anemoi.models.distributed.shapes`` (SPEC §4): shard sizes and shard infos."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional
from typing import Union

from torch import Tensor
from torch.distributed.distributed_c10d import ProcessGroup

from graphshard._ops import name_of
from graphshard._ops import ops

# Types for sharding metadata. These are per-rank partition sizes along one
# tensor dimension, not full per-rank tensor shapes.
ShardSizes = Union[list[int], None]
DatasetShardSizes = dict[str, ShardSizes]


@dataclass(frozen=True)
class GraphShardInfo:
    """Shard metadata of a plain graph: per-rank node and edge counts, None if replicated."""

    nodes: ShardSizes = None
    edges: ShardSizes = None

    def nodes_are_sharded(self):
        return self.nodes is not None

    def edges_are_sharded(self):
        return self.edges is not None


@dataclass(frozen=True)
class BipartiteGraphShardInfo:
    """Shard metadata of a bipartite graph: per-rank source, destination and edge counts."""

    src_nodes: ShardSizes = None
    dst_nodes: ShardSizes = None
    edges: ShardSizes = None

    def src_is_sharded(self):
        return self.src_nodes is not None

    def dst_is_sharded(self):
        return self.dst_nodes is not None

    def edges_are_sharded(self):
        return self.edges is not None


def get_shard_sizes(tensor: Tensor, dim: int, model_comm_group: Optional[ProcessGroup] = None) -> ShardSizes:
    """Get per-rank shard sizes for a tensor split along a specific dimension.

    ``balanced(tensor.size(dim), W)``: W parts that differ by at most one, larger first; W = 1
    for a ``None`` group, so the result is never None. ``dim`` may be negative; out of range is a
    ValueError.
    """
    return list(ops.get_shard_sizes(tensor, dim, name_of(model_comm_group)))


def expand_shard_sizes_to_shapes(tensor: Tensor, dim: int, shard_sizes_dim: list[int]) -> list[list[int]]:
    """Expand per-dimension shard sizes to full per-rank tensor shapes.

    One shape per entry of ``shard_sizes_dim``: the tensor's shape with ``dim`` replaced.
    """
    flat = ops.expand_shard_sizes_to_shapes(tensor, dim, list(shard_sizes_dim))
    n = tensor.dim()
    return [list(flat[i * n : (i + 1) * n]) for i in range(len(shard_sizes_dim))]
