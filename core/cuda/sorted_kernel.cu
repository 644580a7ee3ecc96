// Sortedness check on the GPU: each thread compares neighbours in a grid-stride loop and raises
// one device flag; the stream-ordered flag is read back once.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels.h"
#include "launch.h"

namespace graphshard::cuda_kernels {
namespace {

template <typename T>
__global__ void is_non_decreasing_kernel_impl(const T* __restrict__ v, int64_t n,
                                              int* __restrict__ violated) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i + 1 < n;
       i += stride) {
    if (v[i] > v[i + 1]) {
      *violated = 1;  // benign race: every writer writes 1
      return;
    }
  }
}

}  // namespace

bool is_non_decreasing(const at::Tensor& values) {
  TORCH_CHECK_VALUE(values.is_cuda() && values.dim() == 1,
                    "graphshard::cuda_kernels::is_non_decreasing: values: expected a 1-D CUDA "
                    "tensor, got ",
                    values.device(), " with ", values.dim(), " dims");
  const int64_t n = values.numel();
  if (n < 2) return true;
  const c10::cuda::CUDAGuard guard(values.device());
  const at::Tensor v = values.contiguous();
  at::Tensor flag = at::zeros({1}, v.options().dtype(at::kInt));
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_INDEX_TYPES(v.scalar_type(), "is_non_decreasing", [&] {
    is_non_decreasing_kernel_impl<index_t>
        <<<blocks_for(n), kThreads, 0, stream>>>(v.data_ptr<index_t>(), n, flag.data_ptr<int>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return flag.item<int>() == 0;  // host synchronisation: the caller needs a host bool
}

}  // namespace graphshard::cuda_kernels
