// The seven tensor primitives of anemoi.models.distributed.graph as LibTorch autograd
// functions over a Communicator (SPEC §1, §2).
//
// Placements (what rank r holds): R = the full tensor on every rank; S(d) = piece r along dim d;
// P = a summand of the true value. Each backward is the adjoint of its forward under the
// placement inner products (R: taken once; S, P: summed over ranks).
//
// Common contract:
//  - `group` null or of size 1: bypass, the input itself is returned (no copy) and the
//    gradient passes through unchanged (ensure_sharded still checks its sizes, see below);
//  - dims may be negative; sizes have one entry per rank, may be uneven or zero;
//  - outputs of split, gather, expand and all-to-all keep the input's memory format
//    (get_memory_format; reductions keep it too); non-contiguous inputs are accepted. The
//    format is a local matter: on the wire every piece is row-major, because a piece with
//    size-1 dims reads as channels-last on one rank while its peers' pieces do not;
//  - outputs are fresh tensors (a split is a copy, never a view of the input), except in bypass
//    and in sync_tensor's non-gathering forward, which return the input;
//  - every argument is validated before any communication, with an error naming function,
//    argument, expected, actual value and rank (c10::ValueError). Checks use only what every
//    rank is given (dims, sizes) and the local shape, so consistent bad arguments fail all
//    ranks alike; a local shape that disagrees with sizes fails that rank, and its peers get a
//    CommError from their next collective;
//  - sizes are required (nullopt is an error) wherever the function cuts or gathers with a
//    distributed group: shard, gather, reduce_shard, all_to_all (both), and sync when it
//    gathers;
//  - gradients flow to floating-point inputs only; integer tensors (and inputs that do not
//    require grad) take the same data path without an autograd node; double backward
//    (create_graph=true through one of these backwards) is refused with a c10::ValueError;
//  - reductions accumulate float16/bfloat16 in float32 and cast back; float32/float64 and
//    integers are summed in their own type [SPEC differs from anemoi: no float64 downcast].
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "graphshard/comm.h"
#include "graphshard/shapes.h"

namespace graphshard {

// R -> S(dim): keep piece r; sum(sizes) must equal input.size(dim). Backward: all-gather the
// gradient (S -> R), or with gather_in_backward=false a full-shape gradient whose piece r is the
// upstream gradient and whose other pieces are zero (deterministic; no communication).
at::Tensor shard_tensor(const at::Tensor& input, int64_t dim, const ShardSizes& sizes,
                        const CommPtr& group, bool gather_in_backward = true);

// S(dim) -> R: all-gather; input.size(dim) must equal sizes[r]. Backward: keep piece r.
at::Tensor gather_tensor(const at::Tensor& input, int64_t dim, const ShardSizes& sizes,
                         const CommPtr& group);

// P -> R: all-reduce sum. Backward: identity.
at::Tensor reduce_tensor(const at::Tensor& input, const CommPtr& group);

// With a group, sizes set and gather_in_fwd: forward gathers (S -> R), backward all-reduces the
// gradient then keeps piece r. Otherwise forward is the identity and backward all-reduces the
// gradient (P -> R).
at::Tensor sync_tensor(const at::Tensor& input, int64_t dim, const ShardSizes& sizes,
                       const CommPtr& group, bool gather_in_fwd = true);

// P -> S(dim): one reduce-scatter (never all-reduce + split); sum(sizes) must equal
// input.size(dim). Backward: all-gather.
at::Tensor reduce_shard_tensor(const at::Tensor& input, int64_t dim, const ShardSizes& sizes,
                               const CommPtr& group);

// S(dim_concat) -> S(dim_split): rank r sends piece q along dim_split to rank q and
// concatenates what it receives in rank order along dim_concat. Backward: the inverse
// transpose. Checks: dim_split != dim_concat after normalisation, sum(split_sizes) ==
// input.size(dim_split), concat_sizes[r] == input.size(dim_concat). Result: dim_split ->
// split_sizes[r], dim_concat -> sum(concat_sizes). One all-to-all; pack once, unpack once.
at::Tensor all_to_all_transpose(const at::Tensor& input, int64_t dim_split,
                                const ShardSizes& split_sizes, int64_t dim_concat,
                                const ShardSizes& concat_sizes, const CommPtr& group);

// shard_sizes set: checks len(shard_sizes) == W and shard_sizes[r] == x.size(dim) (W = 1,
// r = 0 for a null group; checked in bypass too) and returns both unchanged (same tensor). Unset:
// sizes = get_shard_sizes(x, dim, group), returns (shard_tensor(x, dim, sizes, group), sizes).
std::pair<at::Tensor, ShardSizes> ensure_sharded(const at::Tensor& x, int64_t dim,
                                                 const ShardSizes& shard_sizes,
                                                 const CommPtr& group);

}  // namespace graphshard
