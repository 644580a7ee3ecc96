// CUDA kernels of core (compiled when GRAPHSHARD_CUDA is on). Callers dispatch here for CUDA
// tensors; a build without CUDA raises a clear error instead.
#pragma once

#include <vector>

#include <ATen/core/Tensor.h>

#include "../cpu/graph_kernels.h"  // cpu::UsedIds, the result type both devices share

namespace graphshard::cuda_kernels {

// True when the 1-D int32/int64 CUDA tensor is non-decreasing. One host synchronisation: the
// answer is a host bool.
bool is_non_decreasing(const at::Tensor& values);

// cpu::counting_sort_perm on a 1-D int32/int64 CUDA row (same contract, same result): an LSD
// radix sort of (key, index) pairs over only the bits the keys use. With key_counts, one host
// synchronisation (the counts are returned on the host).
at::Tensor stable_sort_perm(const at::Tensor& row, int64_t num_keys, int64_t blocks,
                            std::vector<int64_t>* key_counts);

// cpu::used_ids on a 1-D int32/int64 CUDA row whose values are known to lie in [0, n):
// mark, inclusive scan, compact, relabel. One host synchronisation (the number of kept ids).
cpu::UsedIds used_ids(const at::Tensor& row, int64_t n);

// The primitives' packing (core/primitives/collectives.cpp) in one launch each.
// pack_pieces: packed (1-D) = full's pieces `sizes` along dim d one after another, each
// row-major, cast to packed's dtype (a 16-bit float upcast to float32, or none); piece `skip`
// (if >= 0) is left unwritten. unpack_pieces: the inverse, same dtype, piece `skip` untouched.
// Only for what moves_pieces accepts: row-major CUDA tensors on one device, at most
// detail::kMaxPieces pieces; callers copy piece by piece otherwise.
bool moves_pieces(const at::Tensor& full, const at::Tensor& packed, size_t pieces, bool may_upcast);
void pack_pieces(const at::Tensor& full, const at::Tensor& packed, int64_t d,
                 const std::vector<int64_t>& sizes, int skip);
void unpack_pieces(const at::Tensor& packed, const at::Tensor& full, int64_t d,
                   const std::vector<int64_t>& sizes, int skip);

}  // namespace graphshard::cuda_kernels
