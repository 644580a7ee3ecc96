"""Mirror of ``anemoi.models.distributed.graph`` (SPEC §1, §2): the seven tensor primitives.

Each function is graphshard's C++ primitive, called as a PyTorch operator
(``torch.ops.graphshard.<name>``, group passed by name as c10d's functional collectives pass
it), so autograd and ``torch.compile(fullgraph=True)`` see one implementation. Placements (what
rank r holds): R = the full tensor on every rank; S(d) = piece r along dim d; P = a summand of
the true value; every backward is the adjoint of its forward.

Common contract (SPEC §0, §2, §5):

- ``mgroup`` None or of one rank: bypass, the input itself is returned and the gradient passes
  through unchanged;
- dims may be negative; sizes have one entry per rank and may be uneven or zero; sizes are
  required wherever the function cuts or gathers with a distributed group;
- outputs keep the input's memory format; no input is ever modified (a reduce returns a new
  tensor: **[differs]** from anemoi, whose reduces overwrite their input);
- sums accumulate float16/bfloat16 in float32; float32, float64 and integers are summed in their
  own type (**[differs]**: anemoi casts every sum to float32); every rank gets the same bits;
- bad arguments raise ``ValueError`` naming function, argument, expected, actual and rank, before
  any communication; a failed peer raises :class:`graphshard.CommError`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributed.distributed_c10d import ProcessGroup

from graphshard._ops import call
from graphshard._ops import distributed
from graphshard._ops import name_of
from graphshard._ops import ops
from graphshard.distributed.shapes import ShardSizes
from graphshard.distributed.shapes import get_shard_sizes
from graphshard.distributed.utils import model_is_distributed  # noqa: F401


def _sizes(sizes: ShardSizes) -> list[int] | None:
    return None if sizes is None else [int(s) for s in sizes]


def ensure_sharded(
    x: Tensor, dim: int, shard_sizes: ShardSizes, model_comm_group: ProcessGroup | None = None
) -> tuple[Tensor, ShardSizes]:
    """Ensure that the input tensor is sharded along the specified dimension.

    If ``shard_sizes`` is not None the tensor is assumed to already be
    sharded and a consistency check is performed (one entry per rank, and
    ``shard_sizes[rank] == x.shape[dim]``; rank 0 of a world of one for a
    ``None`` group).  Otherwise the tensor is sharded using balanced
    partitioning and the resulting sizes are returned.

    Parameters
    ----------
    x : Tensor
        Input tensor.
    dim : int
        Dimension along which to shard.
    shard_sizes : ShardSizes
        Per-rank partition sizes, or ``None`` if the tensor is replicated.
    model_comm_group : ProcessGroup, optional
        Model communication group.

    Returns
    -------
    tuple[Tensor, ShardSizes]
        The (possibly sharded) tensor and the shard sizes.
    """
    if shard_sizes is not None:
        ops.check_shard_sizes(x, dim, _sizes(shard_sizes), name_of(model_comm_group))
        return x, shard_sizes
    shard_sizes = get_shard_sizes(x, dim, model_comm_group)
    return shard_tensor(x, dim, shard_sizes, model_comm_group), shard_sizes


def shard_tensor(
    input_: Tensor, dim: int, sizes: ShardSizes, mgroup: ProcessGroup, gather_in_backward: bool = True
) -> Tensor:
    """Shard tensor.

    Keeps only part of the tensor that is relevant for the current rank (R -> S(dim));
    ``sum(sizes)`` must equal ``input_.shape[dim]``. Backward: all-gather of the gradient, or with
    ``gather_in_backward=False`` a full-shape gradient whose piece r is the upstream gradient and
    whose other pieces are zero.

    Parameters
    ----------
    input_ : Tensor
        Input
    dim : int
        dimension along which to shard
    sizes : ShardSizes
        Per-rank shard sizes
    mgroup : ProcessGroup
        model communication group
    gather_in_backward : bool
        perform gather in backward, default True

    Returns
    -------
    Tensor
        Sharded tensor.
    """
    if not distributed(mgroup):
        return input_
    return call(ops.shard_tensor, input_, dim, _sizes(sizes), mgroup.group_name, gather_in_backward)


def gather_tensor(input_: Tensor, dim: int, sizes: ShardSizes, mgroup: ProcessGroup) -> Tensor:
    """Gather tensor.

    Gathers tensor shards from ranks (S(dim) -> R, pieces in rank order);
    ``input_.shape[dim]`` must equal ``sizes[rank]``. Backward: keeps piece r of the gradient.

    Parameters
    ----------
    input_ : Tensor
        Input
    dim : int
        dimension along which to gather
    sizes : ShardSizes
        Per-rank shard sizes
    mgroup : ProcessGroup
        model communication group

    Returns
    -------
    Tensor
        Gathered tensor.
    """
    if not distributed(mgroup):
        return input_
    return call(ops.gather_tensor, input_, dim, _sizes(sizes), mgroup.group_name)


def reduce_tensor(input_: Tensor, mgroup: ProcessGroup) -> Tensor:
    """Reduce tensor.

    Reduces tensor across ranks (P -> R: all-reduce sum, in a new tensor; the input keeps its
    values). Backward: identity.

    Parameters
    ----------
    input_ : Tensor
        Input
    mgroup : ProcessGroup
        model communication group

    Returns
    -------
    Tensor
        Reduced tensor.
    """
    if not distributed(mgroup):
        return input_
    return call(ops.reduce_tensor, input_, mgroup.group_name)


class _ReduceInBackward(torch.autograd.Function):
    """sync_tensor without a forward gather: the identity (the input itself, as a view, which an
    operator may not return), whose backward is the reduce operator."""

    @staticmethod
    def forward(ctx, input_, group_name):
        ctx.group_name = group_name
        return input_.view_as(input_)

    @staticmethod
    def backward(ctx, grad_output):
        if torch.is_grad_enabled():
            raise ValueError(
                "graphshard::sync_tensor: backward: expected create_graph=false "
                "(double backward is not supported), got create_graph=true"
            )
        return ops.reduce_tensor(grad_output, ctx.group_name), None


def sync_tensor(
    input_: Tensor,
    dim: int,
    sizes: ShardSizes,
    mgroup: ProcessGroup,
    gather_in_fwd: bool = True,
) -> Tensor:
    """Sync tensor.

    Perform a gather in the forward pass and an allreduce followed by a split in the backward
    pass. With ``sizes`` None or ``gather_in_fwd`` False the forward is the identity and the
    backward an all-reduce (P -> R).

    Parameters
    ----------
    input_ : Tensor
        Input
    dim : int
        dimension along which to gather
    sizes : ShardSizes
        Per-rank shard sizes
    mgroup : ProcessGroup
        model communication group
    gather_in_fwd : bool
        gather in the forward pass, default True

    Returns
    -------
    Tensor
        Synced tensor.
    """
    if not distributed(mgroup):
        return input_
    if not gather_in_fwd or sizes is None:
        return _ReduceInBackward.apply(input_, mgroup.group_name)
    return call(ops.sync_tensor, input_, dim, _sizes(sizes), mgroup.group_name, True)


def reduce_shard_tensor(input_: Tensor, dim: int, sizes: ShardSizes, mgroup: ProcessGroup) -> Tensor:
    """Reduces and then shards tensor.

    Perform an allreduce followed by a split in the forward pass (one reduce-scatter: the same
    result, half the traffic) and a gather in the backward pass.

    Parameters
    ----------
    input_ : Tensor
        Input
    dim : int
        dimension along which to gather
    sizes : ShardSizes
        Per-rank shard sizes
    mgroup : ProcessGroup
        model communication group

    Returns
    -------
    Tensor
        Reduced sharded tensor.
    """
    if not distributed(mgroup):
        return input_
    return call(ops.reduce_shard_tensor, input_, dim, _sizes(sizes), mgroup.group_name)


def all_to_all_transpose(
    input_: Tensor,
    dim_split: int,
    split_sizes: ShardSizes,
    dim_concat: int,
    concat_sizes: ShardSizes,
    mgroup: ProcessGroup,
) -> Tensor:
    """All-to-all transpose.

    Switch the tensor from a dim_concat-sharded to a dim_split-sharded tensor via all-to-all
    transpose, reverse all-to-all in the backwards pass. Rank r sends piece q along
    ``dim_split`` to rank q and concatenates what it receives in rank order along ``dim_concat``.

    Parameters
    ----------
    input_ : Tensor
        Input tensor to be transposed.
    dim_split : int
        Dimension along which to split the input tensor.
    split_sizes : ShardSizes
        Shapes of the split tensors.
    dim_concat : int
        Dimension along which to concatenate the transposed tensors.
    concat_sizes : ShardSizes
        Shapes of the concatenated tensors.
    mgroup : ProcessGroup
        Model communication group.

    Returns
    -------
    Tensor
        Transposed tensor.
    """
    if not distributed(mgroup):
        return input_
    return call(
        ops.all_to_all_transpose,
        input_,
        dim_split,
        _sizes(split_sizes),
        dim_concat,
        _sizes(concat_sizes),
        mgroup.group_name,
    )


def halo_exchange(input_: Tensor, halo_info, mgroup: ProcessGroup) -> Tensor:
    """Halo exchange for graph-partitioned node features (SPEC §3b).

    Sends inner node features to the peer ranks that need them as halo nodes and receives halo
    node features from peers, one all-to-all-v of exactly those rows. Returns a new tensor: the
    local features followed by the received halo rows, in the local numbering of ``halo_info``.

    Backward: the halo rows' gradient goes back to the ranks that own them and is added at the
    sent positions (rank by rank in rank order, so the bits are fixed); the local rows' gradient
    passes through. It is the adjoint of the forward.

    Parameters
    ----------
    input_ : Tensor
        Local node features, shape ``(num_local_nodes, ...)``.
    halo_info : HaloInfo
        Per-rank halo exchange metadata (from :func:`graphshard.distributed.halo.build_halo_info`;
        read by attribute, so anemoi's HaloInfo works too).
    mgroup : ProcessGroup
        Model communication group (``None`` or one rank: the input itself is returned).

    Returns
    -------
    Tensor
        ``(num_local_nodes + num_halo_nodes, ...)``: local + halo features.
    """
    if not distributed(mgroup):
        return input_
    return call(
        ops.halo_exchange,
        input_,
        int(halo_info.num_local_nodes),
        list(halo_info.send_indices),
        [int(c) for c in halo_info.recv_counts],
        mgroup.group_name,
    )
