// What the benchmarks need of a device beyond ATen: waiting for it, and the allocator's
// statistics of a CUDA device (the caching allocator's own: bytes handed to tensors, not the
// memory it keeps cached; the CPU has memory_tracker.h). CUDA only in builds with
// GRAPHSHARD_CUDA; elsewhere asking for it raises.
#pragma once

#include <cstdint>
#include <string>

#include <c10/core/Device.h>

namespace graphshard::bench {

// "cpu" or "cuda": raises a clear error when this build or machine has no such device.
c10::Device parse_device(const std::string& name);
// Returns when every kernel queued on the device has finished (no-op on CPU).
void synchronize(const c10::Device& device);
// A CUDA device's allocated bytes now and at their peak since reset_cuda_peak.
int64_t cuda_allocated_bytes(const c10::Device& device);
int64_t cuda_peak_allocated_bytes(const c10::Device& device);
void reset_cuda_peak(const c10::Device& device);

}  // namespace graphshard::bench
