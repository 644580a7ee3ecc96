// Current and peak bytes allocated by the process, for the peak-extra-memory counters of the
// graph benchmarks.
//
// Two sources are counted, with no overlap between them:
//  - ATen CPU storage: install() wraps the CPU allocator (c10::SetCPUAllocator) so every
//    allocation and free of tensor memory is counted at its requested size;
//  - the C++ heap (std::vector in our kernels and in ATen): memory_tracker.cpp replaces the
//    global operator new/delete and counts malloc_usable_size of each block. ATen's CPU
//    allocator uses posix_memalign, not operator new, so nothing is counted twice.
// Plain malloc outside these two (e.g. a library calling malloc directly) is not seen.
//
// Counters are process-wide atomics: allocations from every thread count.
#pragma once

#include <cstdint>

namespace graphshard::bench {

// Wraps the current CPU allocator. Call first thing in main, before any tensor is created
// (tensors allocated earlier are simply not counted). Idempotent.
void install_memory_tracker();

int64_t current_bytes();
int64_t peak_bytes();
// peak = current: the next peak_bytes() is the high-water mark from now on.
void reset_peak();

}  // namespace graphshard::bench
