// CUDA kernels of core (compiled when GRAPHSHARD_CUDA is on). Callers dispatch here for CUDA
// tensors; a build without CUDA raises a clear error instead.
#pragma once

#include <ATen/core/Tensor.h>

namespace graphshard::cuda_kernels {

// True when the 1-D int32/int64 CUDA tensor is non-decreasing. One host synchronisation: the
// answer is a host bool.
bool is_non_decreasing(const at::Tensor& values);

}  // namespace graphshard::cuda_kernels
