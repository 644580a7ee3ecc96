// Whole-world answers for the tensor primitives (SPEC §1, §2), computed in one process from
// every rank's input. LibTorch only: nothing here shares code with core/.
//
// Conventions: `dim` may be negative; `sizes` has one entry per rank; inputs are indexed by
// rank. Results are plain (contiguous) tensors; layouts are checked by the properties, not here.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

namespace graphshard::reference {

// Piece `rank` of `full` along dim (R -> S).
at::Tensor shard(const at::Tensor& full, int64_t dim, const std::vector<int64_t>& sizes, int rank);

// Concatenation of every rank's piece along dim, in rank order (S -> R).
at::Tensor gather(const std::vector<at::Tensor>& pieces, int64_t dim);

// Full-shape tensor whose piece `rank` along dim is `piece` and whose other pieces are zero.
at::Tensor expand(const at::Tensor& piece, int64_t dim, const std::vector<int64_t>& sizes,
                  int rank);

// Element-wise sum of every rank's summand (P -> R): floating point summed in float64, integers
// in int64, then cast to the inputs' dtype.
at::Tensor reduce(const std::vector<at::Tensor>& summands);

// Piece `rank` along dim of the sum (P -> S).
at::Tensor reduce_shard(const std::vector<at::Tensor>& summands, int64_t dim,
                        const std::vector<int64_t>& sizes, int rank);

// What rank `rank` holds after the transpose S(dim_concat) -> S(dim_split): rebuild the full
// tensor from every rank's input along dim_concat, then cut it along dim_split.
at::Tensor all_to_all(const std::vector<at::Tensor>& inputs, int64_t dim_split,
                      const std::vector<int64_t>& split_sizes, int64_t dim_concat, int rank);

}  // namespace graphshard::reference
