// CUDA kernels of the graph functions: stable sort by destination (LSD radix sort on only the
// bits the keys use) and mark-and-scan of used sources. Results are bitwise those of the CPU
// kernels (core/cpu/graph_kernels.cpp): a stable sort and a relabelling each have one answer.
// Every launch is on the current stream, under a device guard, with a launch check after it;
// the only host synchronisations are the ones named where an output size must be known.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <cub/cub.cuh>

#include <limits>
#include <string>
#include <type_traits>

#include "kernels.h"
#include "launch.h"

namespace graphshard::cuda_kernels {
namespace {

// Bits needed to represent every value in [0, bound): the radix sort's end_bit.
int bits_for(int64_t bound) {
  int bits = 0;
  while (bits < 63 && (int64_t{1} << bits) < bound) ++bits;
  return std::max(bits, 1);
}

// Temporary storage for a cub call, from the caching allocator (stream-ordered reuse).
at::Tensor cub_storage(size_t bytes, const at::Device& device) {
  return at::empty({static_cast<int64_t>(std::max<size_t>(bytes, 1))},
                   at::TensorOptions().dtype(at::kByte).device(device));
}

void cub_check(cudaError_t e, const char* what) {
  TORCH_CHECK(e == cudaSuccess, "graphshard::cuda_kernels: ", what,
              " failed: ", cudaGetErrorString(e));
}

// key = the part of balanced(n, parts) the value lies in (the CPU KeyOf with blocks > 0).
template <typename T>
__global__ void part_key_kernel_impl(const T* __restrict__ v, int64_t n, int64_t big, int64_t small,
                                     int64_t cut, uint32_t* __restrict__ key) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const int64_t x = static_cast<int64_t>(v[i]);
    key[i] = static_cast<uint32_t>(x < cut ? x / big : cut / big + (x - cut) / small);
  }
}

// The values themselves as 32-bit keys (all lie in [0, 2^32)): a private copy the sort may
// overwrite, half as wide as int64 ids, so each radix pass moves half the key bytes.
template <typename T>
__global__ void narrow_keys_kernel_impl(const T* __restrict__ v, int64_t n,
                                        uint32_t* __restrict__ key) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    key[i] = static_cast<uint32_t>(v[i]);
  }
}

template <typename V>
__global__ void iota_kernel_impl(V* __restrict__ out, int64_t n) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    out[i] = static_cast<V>(i);
  }
}

__global__ void count_keys_kernel_impl(const uint32_t* __restrict__ key, int64_t n,
                                       unsigned long long* __restrict__ counts) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    atomicAdd(counts + key[i], 1ull);
  }
}

// The stable order of `keys` (n > 0 of them, consumed: the sort overwrites them) as an int64
// permutation. Keys and indices ping-pong between two buffers each (cub::DoubleBuffer), so
// cub's own storage stays small; indices are int32 when n allows (V), widened at the end.
// Peak beyond the input: 2 key and 2 index buffers, or after the sort the int64 result.
template <typename K, typename V>
at::Tensor radix_sort_perm(at::Tensor keys, int end_bit) {
  const int64_t n = keys.numel();
  const auto stream = at::cuda::getCurrentCUDAStream();
  const auto index_type = std::is_same_v<V, int32_t> ? at::kInt : at::kLong;
  at::Tensor alt_keys = at::empty_like(keys);
  at::Tensor values = at::empty({n}, keys.options().dtype(index_type));
  at::Tensor alt_values = at::empty_like(values);
  iota_kernel_impl<V><<<blocks_for(n), kThreads, 0, stream>>>(values.data_ptr<V>(), n);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  cub::DoubleBuffer<K> key_buf(static_cast<K*>(keys.data_ptr()),
                               static_cast<K*>(alt_keys.data_ptr()));
  cub::DoubleBuffer<V> value_buf(values.data_ptr<V>(), alt_values.data_ptr<V>());
  size_t bytes = 0;
  cub_check(
      cub::DeviceRadixSort::SortPairs(nullptr, bytes, key_buf, value_buf, n, 0, end_bit, stream),
      "DeviceRadixSort::SortPairs (size query)");
  at::Tensor storage = cub_storage(bytes, keys.device());
  cub_check(cub::DeviceRadixSort::SortPairs(storage.data_ptr(), bytes, key_buf, value_buf, n, 0,
                                            end_bit, stream),
            "DeviceRadixSort::SortPairs");
  const bool in_first = value_buf.Current() == values.data_ptr<V>();
  const at::Tensor sorted = in_first ? values : alt_values;
  // Freed (stream-ordered, back to the caching allocator) before the result is allocated.
  keys = alt_keys = storage = at::Tensor();
  values = alt_values = at::Tensor();
  return std::is_same_v<V, int64_t> ? sorted : sorted.to(at::kLong);
}

// int32 indices while n fits them (every realistic edge count), int64 beyond.
template <typename K>
at::Tensor sort_keys_perm(at::Tensor keys, int end_bit) {
  if (keys.numel() <= std::numeric_limits<int32_t>::max()) {
    return radix_sort_perm<K, int32_t>(std::move(keys), end_bit);
  }
  return radix_sort_perm<K, int64_t>(std::move(keys), end_bit);
}

template <typename T, typename M>
__global__ void mark_kernel_impl(const T* __restrict__ v, int64_t n, M* __restrict__ used) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    used[static_cast<int64_t>(v[i])] = 1;  // benign race: every writer writes 1
  }
}

// position[i] = number of used ids <= i (an inclusive scan of the mask): used id i is kept at
// position[i] - 1.
template <typename T, typename M>
__global__ void compact_kernel_impl(const M* __restrict__ used,
                                    const int64_t* __restrict__ position, int64_t n,
                                    T* __restrict__ kept) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    if (used[i]) kept[position[i] - 1] = static_cast<T>(i);
  }
}

template <typename T>
__global__ void relabel_kernel_impl(const T* __restrict__ v, int64_t e,
                                    const int64_t* __restrict__ position, T* __restrict__ out) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < e;
       i += stride) {
    out[i] = static_cast<T>(position[static_cast<int64_t>(v[i])] - 1);
  }
}

void check_count(const char* kernel, const char* arg, int64_t n) {
  if (n < 0) cpu::precondition_failed(kernel, arg, "a count >= 0", std::to_string(n));
}

void check_row(const char* fn, const at::Tensor& row) {
  TORCH_CHECK_VALUE(row.is_cuda() && row.dim() == 1 &&
                        (row.scalar_type() == at::kLong || row.scalar_type() == at::kInt),
                    "graphshard::cuda_kernels::", fn,
                    ": row: expected a 1-D int32/int64 CUDA tensor, got ", row.toString(),
                    " of shape ", row.sizes());
}

}  // namespace

at::Tensor stable_sort_perm(const at::Tensor& row, int64_t num_keys, int64_t blocks,
                            std::vector<int64_t>* key_counts) {
  constexpr const char* kernel = "cuda_kernels::stable_sort_perm";
  check_row("stable_sort_perm", row);
  check_count(kernel, "num_keys", num_keys);
  check_count(kernel, "blocks", blocks);
  const c10::cuda::CUDAGuard guard(row.device());
  const at::Tensor v = row.contiguous();
  // A value outside [0, num_keys) gives a part key past the counts (an out-of-bounds atomicAdd)
  // or bits above end_bit (a wrong order): checked with the CPU kernel's scan (one host sync).
  if (cpu::scan_preconditions()) cpu::check_values_in(kernel, "row", v, 0, num_keys);
  const int64_t n = v.numel();
  const auto stream = at::cuda::getCurrentCUDAStream();
  // 32-bit keys: block numbers always (blocks <= n + 1 fits), ids when they fit.
  const bool narrow = blocks > 0 || num_keys <= (int64_t{1} << 32);
  at::Tensor keys =
      narrow ? at::empty({n}, v.options().dtype(at::kInt)) : v.to(at::kLong, false, true);
  auto* key32 = narrow ? static_cast<uint32_t*>(keys.data_ptr()) : nullptr;
  if (blocks > 0 && n > 0) {
    const int64_t small = num_keys / blocks, big = small + 1, cut = (num_keys % blocks) * big;
    AT_DISPATCH_INDEX_TYPES(v.scalar_type(), "part_key", [&] {
      part_key_kernel_impl<index_t><<<blocks_for(n), kThreads, 0, stream>>>(
          v.data_ptr<index_t>(), n, big, std::max<int64_t>(small, 1), cut, key32);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  } else if (narrow && n > 0) {
    AT_DISPATCH_INDEX_TYPES(v.scalar_type(), "narrow_keys", [&] {
      narrow_keys_kernel_impl<index_t>
          <<<blocks_for(n), kThreads, 0, stream>>>(v.data_ptr<index_t>(), n, key32);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  at::Tensor counts;
  if (blocks > 0 && key_counts) {
    counts = at::zeros({blocks}, v.options().dtype(at::kLong));
    if (n > 0) {
      count_keys_kernel_impl<<<blocks_for(n), kThreads, 0, stream>>>(
          key32, n, reinterpret_cast<unsigned long long*>(counts.data_ptr()));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  } else if (key_counts) {
    key_counts->clear();  // as on the CPU: no blocks, no counts
  }
  at::Tensor perm = at::empty({0}, v.options().dtype(at::kLong));
  if (n > 0) {
    const int end_bit = bits_for(blocks > 0 ? blocks : num_keys);
    perm = narrow ? sort_keys_perm<uint32_t>(std::move(keys), end_bit)
                  : sort_keys_perm<int64_t>(std::move(keys), end_bit);
  }
  if (counts.defined()) {
    // Host synchronisation: the caller needs the block sizes on the host (shard sizes). The
    // sort is already enqueued, so the device works on it meanwhile.
    const at::Tensor host = counts.cpu();
    key_counts->assign(host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + blocks);
  }
  return perm;
}

namespace {

// The mask is M wide: cub's scan accumulates in the input type, so int32 only while the
// count of used ids cannot pass 2^31 - 1 (n below it), int64 beyond.
template <typename T, typename M>
cpu::UsedIds used_ids_impl(const at::Tensor& v, int64_t n) {
  const int64_t e = v.numel();
  const auto stream = at::cuda::getCurrentCUDAStream();
  cpu::UsedIds out;
  at::Tensor used =
      at::zeros({n}, v.options().dtype(std::is_same_v<M, int32_t> ? at::kInt : at::kLong));
  at::Tensor position = at::empty({n}, v.options().dtype(at::kLong));
  if (e > 0) {
    mark_kernel_impl<T, M>
        <<<blocks_for(e), kThreads, 0, stream>>>(v.data_ptr<T>(), e, used.data_ptr<M>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  int64_t count = 0;
  if (n > 0) {
    size_t bytes = 0;
    cub_check(cub::DeviceScan::InclusiveSum(nullptr, bytes, used.data_ptr<M>(),
                                            position.data_ptr<int64_t>(), n, stream),
              "DeviceScan::InclusiveSum (size query)");
    at::Tensor storage = cub_storage(bytes, v.device());
    cub_check(cub::DeviceScan::InclusiveSum(storage.data_ptr(), bytes, used.data_ptr<M>(),
                                            position.data_ptr<int64_t>(), n, stream),
              "DeviceScan::InclusiveSum");
    // Host synchronisation: the number of kept ids is the size of an output.
    count = position[n - 1].item<int64_t>();
  }
  out.kept = at::empty({count}, v.options());
  out.relabelled = at::empty({e}, v.options());
  if (n > 0) {
    compact_kernel_impl<T, M><<<blocks_for(n), kThreads, 0, stream>>>(
        used.data_ptr<M>(), position.data_ptr<int64_t>(), n, out.kept.data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  if (e > 0) {
    relabel_kernel_impl<T><<<blocks_for(e), kThreads, 0, stream>>>(
        v.data_ptr<T>(), e, position.data_ptr<int64_t>(), out.relabelled.data_ptr<T>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return out;
}

}  // namespace

cpu::UsedIds used_ids(const at::Tensor& row, int64_t n) {
  constexpr const char* kernel = "cuda_kernels::used_ids";
  check_row("used_ids", row);
  check_count(kernel, "n", n);
  const c10::cuda::CUDAGuard guard(row.device());
  const at::Tensor v = row.contiguous();
  // Unlike the CPU kernel this one does not test the ids while marking: one outside [0, n)
  // would be an out-of-bounds store. Callers check the range first; the scan re-checks it.
  if (cpu::scan_preconditions()) cpu::check_values_in(kernel, "row", v, 0, n);
  return AT_DISPATCH_INDEX_TYPES(v.scalar_type(), "used_ids", [&] {
    return n <= std::numeric_limits<int32_t>::max() ? used_ids_impl<index_t, int32_t>(v, n)
                                                    : used_ids_impl<index_t, int64_t>(v, n);
  });
}

}  // namespace graphshard::cuda_kernels
