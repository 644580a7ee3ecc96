// RapidCheck generators for the domain: world sizes, per-rank sizes, dtypes, shapes, memory
// formats, and deterministic tensor data from a seed.
//
// Tensor data are small integers (in [-4, 4]) stored in the requested dtype, so sums over up to
// 64 ranks are exact in every dtype (f16 included) and forward equality can be bitwise; the
// precision of 16-bit accumulation is tested separately with chosen values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <rapidcheck.h>

namespace graphshard::props {

struct DType {
  at::ScalarType type;
  bool operator==(const DType& o) const { return type == o.type; }
};
std::ostream& operator<<(std::ostream& os, const DType& d);

// f16, bf16, f32, f64, int64.
rc::Gen<DType> gen_dtype();
// Floating-point only (for autograd properties).
rc::Gen<DType> gen_float_dtype();

// W non-negative sizes, each in [0, max_each]; zeros are common; sometimes all equal.
rc::Gen<std::vector<int64_t>> gen_sizes(int world_size, int64_t max_each = 12);

// A shape of `ndim` dims with each extent in [0, max_extent] (0 rarely).
rc::Gen<std::vector<int64_t>> gen_shape(int ndim, int64_t max_extent = 5);

// Deterministic integer-valued data in [-4, 4], from a seed.
at::Tensor make_data(const std::vector<int64_t>& shape, at::ScalarType dtype, uint64_t seed);

// Same as make_data but laid out in the given memory format (ChannelsLast needs 4 dims) or as a
// non-contiguous view (strided = true: a transposed-back or sliced view with the same values).
at::Tensor make_data_as(const std::vector<int64_t>& shape, at::ScalarType dtype, uint64_t seed,
                        at::MemoryFormat format, bool strided);

// Layout choice for generated tensors.
struct Layout {
  at::MemoryFormat format = at::MemoryFormat::Contiguous;
  bool strided = false;
};
std::ostream& operator<<(std::ostream& os, const Layout& l);
// Contiguous, channels-last (only when ndim == 4) or a strided view.
rc::Gen<Layout> gen_layout(int ndim);

// Exact (bitwise, same dtype and shape) tensor equality with a readable message on failure.
void expect_equal(const at::Tensor& actual, const at::Tensor& expected, const std::string& what);
// Equality within the dtype's tolerance (values compared in float64).
void expect_close(const at::Tensor& actual, const at::Tensor& expected, const std::string& what,
                  double rtol, double atol);

}  // namespace graphshard::props

// ---- Tensor primitives ---------------------------------------------------------------------
namespace graphshard::props {

// A dim of an ndim-dimensional tensor, negative about half of the time: [-ndim, ndim).
rc::Gen<int64_t> gen_dim(int ndim);

// A dim of an ndim-dimensional tensor (ndim >= 2) that differs from `dim` after normalisation;
// either sign.
rc::Gen<int64_t> gen_other_dim(int ndim, int64_t dim);

// Per-rank shard sizes: random uneven ones (zeros common, see gen_sizes), all equal, or
// balanced(n, W) for a random n (n < W gives trailing zeros).
rc::Gen<std::vector<int64_t>> gen_shard_sizes(int world_size, int64_t max_each = 4);

}  // namespace graphshard::props
