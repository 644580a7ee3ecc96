// Argument checks shared by the primitives (SPEC §5), on top of core/check.h.
//
// Every check depends only on arguments that all ranks are given consistently (dims, sizes,
// the local tensor's own shape), so correct callers fail together on every rank before any
// collective starts. Messages follow core/check.h:
//   graphshard::<function>: <argument>: expected ..., got ... (rank r)
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

#include "graphshard/shapes.h"

namespace graphshard::detail {

// input.defined().
void check_defined(const char* fn, const char* arg, const at::Tensor& x, int rank);

// `sizes` must be set (the function needs per-rank sizes for a distributed group), have one
// entry per rank and no negative entry. Returns the entries.
const std::vector<int64_t>& require_sizes(const char* fn, const char* arg, const ShardSizes& sizes,
                                          int world, int rank);

// sum(sizes) == x.size(d): the whole tensor is cut into the pieces.
void check_total(const char* fn, const char* arg, const std::vector<int64_t>& sizes,
                 const at::Tensor& x, int64_t d, int rank);

// sizes[rank] == x.size(d): the local tensor is this rank's piece.
void check_local(const char* fn, const char* arg, const std::vector<int64_t>& sizes,
                 const at::Tensor& x, int64_t d, int rank);

}  // namespace graphshard::detail
