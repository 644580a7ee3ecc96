#include "device.h"

#include <stdexcept>

#include <ATen/Context.h>
#ifdef GRAPHSHARD_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace graphshard::bench {
namespace {

#ifdef GRAPHSHARD_WITH_CUDA
c10::CachingDeviceAllocator::Stat allocated(const c10::Device& d) {
  using c10::CachingDeviceAllocator::StatType;
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(d.index());
  return stats.allocated_bytes[static_cast<size_t>(StatType::AGGREGATE)];
}
#endif

}  // namespace

c10::Device parse_device(const std::string& name) {
  if (name == "cpu") return c10::Device(c10::kCPU);
  if (name != "cuda") {
    throw std::invalid_argument("--device: expected 'cpu' or 'cuda', got '" + name + "'");
  }
#ifdef GRAPHSHARD_WITH_CUDA
  if (!at::hasCUDA()) throw std::invalid_argument("--device=cuda: no CUDA device on this machine");
  return c10::Device(c10::kCUDA, 0);
#else
  throw std::invalid_argument("--device=cuda: this build has no CUDA (GRAPHSHARD_CUDA=OFF)");
#endif
}

void synchronize(const c10::Device& device) {
#ifdef GRAPHSHARD_WITH_CUDA
  if (device.is_cuda()) c10::cuda::device_synchronize();
#endif
}

#ifdef GRAPHSHARD_WITH_CUDA
int64_t cuda_allocated_bytes(const c10::Device& device) {
  return allocated(device).current;
}
int64_t cuda_peak_allocated_bytes(const c10::Device& device) {
  return allocated(device).peak;
}
void reset_cuda_peak(const c10::Device& device) {
  c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
}
#else
[[noreturn]] static void no_cuda() {
  throw std::logic_error("graphshard bench: no CUDA in this build");
}
int64_t cuda_allocated_bytes(const c10::Device&) {
  no_cuda();
}
int64_t cuda_peak_allocated_bytes(const c10::Device&) {
  no_cuda();
}
void reset_cuda_peak(const c10::Device&) {
  no_cuda();
}
#endif

}  // namespace graphshard::bench
