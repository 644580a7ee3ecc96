// Launch shape shared by the grid-stride kernels of core/cuda.
#pragma once

#include <algorithm>
#include <cstdint>

namespace graphshard::cuda_kernels {

constexpr int kThreads = 256;

// Enough blocks to cover n once, capped: grid-stride loops cover the rest.
inline int64_t blocks_for(int64_t n) {
  return std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, 65535));
}

}  // namespace graphshard::cuda_kernels
