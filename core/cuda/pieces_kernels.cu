// Pack and unpack of the primitives' pieces in one launch: every moved element is one thread's
// work in a grid-stride loop over the packed buffer, which is read or written in order, while
// the full tensor is touched row by row (piece_layout.h). Rows move as the widest word that
// divides them and both addresses: a same-dtype pack of rows of 16-byte multiples moves 16
// bytes per thread and iteration.
#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "kernels.h"
#include "launch.h"
#include "piece_layout.h"

namespace graphshard::cuda_kernels {
namespace {

using detail::PieceLayout;

// kToPacked: packed[p] = full[f] (with a cast when Src and Dst differ); else full[f] = packed[p].
// The layout stays in parameter memory (__grid_constant__): the binary search indexes it at
// run time, which would otherwise make nvcc copy its 2 KiB into each thread's local memory.
template <typename Src, typename Dst, bool kToPacked>
__global__ void move_pieces_kernel_impl(const Src* __restrict__ src, Dst* __restrict__ dst,
                                        __grid_constant__ const PieceLayout layout, int64_t n) {
  const int64_t stride = static_cast<int64_t>(blockDim.x) * gridDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    const int64_t p = layout.packed_index(i);
    const int64_t f = layout.full_index(p);
    if constexpr (kToPacked) {
      dst[p] = static_cast<Dst>(src[f]);
    } else {
      dst[f] = static_cast<Dst>(src[p]);
    }
  }
}

template <typename Src, typename Dst, bool kToPacked>
void launch(const void* src, void* dst, const PieceLayout& layout) {
  const int64_t n = layout.moved();
  if (n == 0) return;
  move_pieces_kernel_impl<Src, Dst, kToPacked>
      <<<blocks_for(n), kThreads, 0, at::cuda::getCurrentCUDAStream()>>>(
          static_cast<const Src*>(src), static_cast<Dst*>(dst), layout, n);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Same dtype on both sides: the bytes move as words of the widest fitting unit.
template <bool kToPacked>
void move_bytes(const at::Tensor& full, const at::Tensor& packed, int64_t d,
                const std::vector<int64_t>& sizes, int skip) {
  const int64_t elem = full.element_size();
  const auto shape = full.sizes().vec();
  const int64_t unit =
      detail::unit_bytes_for(shape, d, sizes, elem, reinterpret_cast<uintptr_t>(full.data_ptr()),
                             reinterpret_cast<uintptr_t>(packed.data_ptr()));
  const PieceLayout layout = detail::piece_layout(shape, d, sizes, skip, elem, unit);
  const void* src = kToPacked ? full.data_ptr() : packed.data_ptr();
  void* dst = kToPacked ? packed.data_ptr() : full.data_ptr();
  switch (unit) {
    case 16:
      return launch<uint4, uint4, kToPacked>(src, dst, layout);
    case 8:
      return launch<uint64_t, uint64_t, kToPacked>(src, dst, layout);
    case 4:
      return launch<uint32_t, uint32_t, kToPacked>(src, dst, layout);
    case 2:
      return launch<uint16_t, uint16_t, kToPacked>(src, dst, layout);
    default:
      return launch<uint8_t, uint8_t, kToPacked>(src, dst, layout);
  }
}

bool is_upcast(at::ScalarType from, at::ScalarType to) {
  return (from == at::kHalf || from == at::kBFloat16) && to == at::kFloat;
}

void check_pieces(const char* fn, const at::Tensor& full, const at::Tensor& packed, int64_t d,
                  const std::vector<int64_t>& sizes, int skip, bool may_upcast) {
  TORCH_CHECK_VALUE(moves_pieces(full, packed, sizes.size(), may_upcast),
                    "graphshard::cuda_kernels::", fn,
                    ": expected row-major CUDA tensors on one device, at most ", detail::kMaxPieces,
                    " pieces, got full ", full.toString(), " on ", full.device(), ", packed ",
                    packed.toString(), " on ", packed.device(), ", ", sizes.size(), " pieces");
  TORCH_CHECK_VALUE(d >= 0 && d < full.dim() && packed.numel() == full.numel(),
                    "graphshard::cuda_kernels::", fn, ": expected dim in [0, ", full.dim(),
                    ") and as many packed elements as full ones (", full.numel(), "), got dim ", d,
                    " and ", packed.numel());
  int64_t sum = 0;
  for (int64_t s : sizes) {
    TORCH_CHECK_VALUE(s >= 0, "graphshard::cuda_kernels::", fn,
                      ": sizes: expected lengths >= 0, got ", s);
    sum += s;
  }
  TORCH_CHECK_VALUE(sum == full.size(d) && skip >= -1 && skip < static_cast<int>(sizes.size()),
                    "graphshard::cuda_kernels::", fn, ": expected sizes summing to ", full.size(d),
                    " and skip in [-1, ", sizes.size(), "), got sum ", sum, " and skip ", skip);
}

}  // namespace

bool moves_pieces(const at::Tensor& full, const at::Tensor& packed, size_t pieces,
                  bool may_upcast) {
  const bool types = full.scalar_type() == packed.scalar_type() ||
                     (may_upcast && is_upcast(full.scalar_type(), packed.scalar_type()));
  return full.is_cuda() && packed.device() == full.device() && full.is_contiguous() &&
         packed.is_contiguous() && types && pieces >= 1 &&
         pieces <= static_cast<size_t>(detail::kMaxPieces);
}

void pack_pieces(const at::Tensor& full, const at::Tensor& packed, int64_t d,
                 const std::vector<int64_t>& sizes, int skip) {
  check_pieces("pack_pieces", full, packed, d, sizes, skip, true);
  const c10::cuda::CUDAGuard guard(full.device());
  if (full.scalar_type() == packed.scalar_type()) {
    return move_bytes<true>(full, packed, d, sizes, skip);
  }
  // The upcast of 16-bit floats for a sum: element by element.
  const PieceLayout layout = detail::piece_layout(full.sizes().vec(), d, sizes, skip, 1, 1);
  if (full.scalar_type() == at::kHalf) {
    return launch<at::Half, float, true>(full.data_ptr(), packed.data_ptr(), layout);
  }
  launch<at::BFloat16, float, true>(full.data_ptr(), packed.data_ptr(), layout);
}

void unpack_pieces(const at::Tensor& packed, const at::Tensor& full, int64_t d,
                   const std::vector<int64_t>& sizes, int skip) {
  check_pieces("unpack_pieces", full, packed, d, sizes, skip, false);
  const c10::cuda::CUDAGuard guard(full.device());
  move_bytes<false>(full, packed, d, sizes, skip);
}

}  // namespace graphshard::cuda_kernels
