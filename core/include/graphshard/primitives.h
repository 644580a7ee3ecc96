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
//    (get_memory_format); non-contiguous inputs are accepted;
//  - every argument is validated before any communication, with an error naming function,
//    argument, expected, actual value and rank (c10::ValueError), identical on all ranks;
//  - gradients flow to floating-point inputs only; integer tensors pass through unchanged in
//    type; double backward is refused with a clear error;
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

// R -> S(dim): keep piece r. Backward: all-gather the gradient (S -> R), or with
// gather_in_backward=false a full-shape gradient whose piece r is the upstream gradient and
// whose other pieces are zero (no communication).
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

// P -> S(dim): one reduce-scatter. Backward: all-gather.
at::Tensor reduce_shard_tensor(const at::Tensor& input, int64_t dim, const ShardSizes& sizes,
                               const CommPtr& group);

// S(dim_concat) -> S(dim_split): rank r sends piece q along dim_split to rank q and
// concatenates what it receives in rank order along dim_concat. Backward: the inverse
// transpose. dim_split != dim_concat after normalisation.
at::Tensor all_to_all_transpose(const at::Tensor& input, int64_t dim_split,
                                const ShardSizes& split_sizes, int64_t dim_concat,
                                const ShardSizes& concat_sizes, const CommPtr& group);

// shard_sizes set: checks shard_sizes[r] == x.size(dim) (r = 0 for a null group) and returns
// both unchanged. Unset: sizes = get_shard_sizes(x, dim, group), returns
// (shard_tensor(x, dim, sizes, group), sizes).
std::pair<at::Tensor, ShardSizes> ensure_sharded(const at::Tensor& x, int64_t dim,
                                                 const ShardSizes& shard_sizes,
                                                 const CommPtr& group);

}  // namespace graphshard
