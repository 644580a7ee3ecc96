// Where each element of a packed buffer lives in the tensor it was cut from: the index
// arithmetic of the CUDA pack/unpack kernels (pieces_kernels.cu), plain enough to run on the
// host too, where a CPU test checks it against ATen's narrow + copy.
//
// The full tensor is row-major, viewed as [outer, row] around the cut dim (a row: the cut dim
// and every dim after it); piece q is [outer, start[q + 1] - start[q]] of it, and the packed
// buffer holds the pieces one after another, each row-major. Indices count `units`: elements,
// or groups of bytes moved as one wider word, never bytes.
#pragma once

#include <cstdint>
#include <numeric>
#include <vector>

#if defined(__CUDACC__)
#define GRAPHSHARD_HOST_DEVICE __host__ __device__
#else
#define GRAPHSHARD_HOST_DEVICE
#endif

namespace graphshard::detail {

// Why a fixed bound: the layout travels by value as a kernel argument (about 2 KiB of the 4 KiB
// every CUDA architecture accepts), so no host-to-device copy precedes the launch. Callers
// with more pieces fall back to one ATen copy per piece.
constexpr int kMaxPieces = 256;

struct PieceLayout {
  int64_t outer = 1;  // product of the extents before the cut dim
  int64_t row = 0;    // units per row of the full tensor
  int pieces = 0;
  int skip = -1;                       // the piece left untouched (-1: none)
  int64_t start[kMaxPieces + 1] = {};  // start[q]: where piece q begins in a row, in units

  // Offset of piece q in the packed buffer: every piece before it, outer rows of its width.
  GRAPHSHARD_HOST_DEVICE int64_t packed(int q) const { return start[q] * outer; }

  // Units moved: every piece but `skip`.
  GRAPHSHARD_HOST_DEVICE int64_t moved() const {
    const int64_t all = packed(pieces);
    return skip < 0 ? all : all - (packed(skip + 1) - packed(skip));
  }

  // The packed index of the i-th moved unit (i in [0, moved())): the skipped piece's range
  // is stepped over.
  GRAPHSHARD_HOST_DEVICE int64_t packed_index(int64_t i) const {
    return (skip < 0 || i < packed(skip)) ? i : i + (packed(skip + 1) - packed(skip));
  }

  // The full tensor's index of packed index p (in [0, packed(pieces))).
  GRAPHSHARD_HOST_DEVICE int64_t full_index(int64_t p) const {
    // The last piece starting at or before p (empty pieces share a start; the last of them
    // is the one that holds p).
    int lo = 0, hi = pieces - 1;
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (packed(mid) <= p) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    const int64_t width = start[lo + 1] - start[lo];  // units of piece lo per row
    const int64_t j = p - packed(lo);
    const int64_t o = j / width;
    return o * row + start[lo] + (j - o * width);
  }
};

// Bytes per unit length of dim d of a row-major tensor of `shape` (elements of elem_bytes).
inline int64_t bytes_per_position(const std::vector<int64_t>& shape, int64_t d,
                                  int64_t elem_bytes) {
  int64_t bytes = elem_bytes;
  for (size_t i = d + 1; i < shape.size(); ++i) bytes *= shape[i];
  return bytes;
}

// The widest word (16, 8, 4, 2 or 1 bytes) that every row of every piece starts and ends on,
// in the full tensor and in the packed buffer: it divides the bytes per position along the
// cut dim times the gcd of the piece sizes, and both base addresses. Why the gcd: a cut of
// float features [N, F] along F into pieces of multiples of 4 moves 16 bytes at a time.
inline int64_t unit_bytes_for(const std::vector<int64_t>& shape, int64_t d,
                              const std::vector<int64_t>& sizes, int64_t elem_bytes,
                              uintptr_t full_address, uintptr_t packed_address) {
  int64_t g = 0;
  for (int64_t s : sizes) g = std::gcd(g, s);
  const int64_t span = bytes_per_position(shape, d, elem_bytes) * g;  // 0: nothing moves
  int64_t unit = 16;
  while (unit > 1 && (span % unit != 0 || full_address % unit != 0 || packed_address % unit != 0)) {
    unit /= 2;
  }
  return unit;
}

// The layout of pieces `sizes` (at most kMaxPieces, summing to shape[d]) cut along dim d of a
// row-major tensor of `shape`, counted in units of `unit_bytes` (unit_bytes_for's answer, or
// elem_bytes itself).
inline PieceLayout piece_layout(const std::vector<int64_t>& shape, int64_t d,
                                const std::vector<int64_t>& sizes, int skip, int64_t elem_bytes,
                                int64_t unit_bytes) {
  PieceLayout l;
  for (int64_t i = 0; i < d; ++i) l.outer *= shape[i];
  const int64_t position = bytes_per_position(shape, d, elem_bytes);
  l.row = shape[d] * position / unit_bytes;
  l.pieces = static_cast<int>(sizes.size());
  l.skip = skip;
  int64_t at = 0;
  for (int q = 0; q < l.pieces; ++q) {
    at += sizes[q];
    l.start[q + 1] = at * position / unit_bytes;
  }
  return l;
}

}  // namespace graphshard::detail
