// Cases and helpers shared by the tensor primitives' properties (primitives_*.cpp).
//
// A case fixes everything every rank needs to build every rank's tensors: the base shape, the
// cut dim and its per-rank sizes, a second dim and sizes (all-to-all), dtype, layout, flags and
// a seed. Rank q's data are make_data(..., seed_for(case, stream, q)), so each rank can rebuild
// the whole world's inputs and compare with the reference.
#pragma once

#include <cmath>
#include <cstdint>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <rapidcheck.h>

#include "generators.h"
#include "graphshard/comm.h"

namespace graphshard::props {

struct PrimCase {
  DType dtype;
  std::vector<int64_t> shape;   // extents of the dims that are not cut
  int64_t dim = 0;              // the cut dim (split dim of all-to-all), maybe negative
  std::vector<int64_t> sizes;   // per-rank extents along dim
  int64_t dim2 = 0;             // all-to-all concat dim (!= dim), maybe negative
  std::vector<int64_t> sizes2;  // per-rank extents along dim2
  Layout layout;
  bool flag = true;       // gather_in_backward / gather_in_fwd / ensure_sharded sizes given
  bool sizes_set = true;  // sync_tensor: sizes given
  uint64_t seed = 0;
};

inline std::string list_str(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

inline std::ostream& operator<<(std::ostream& os, const PrimCase& c) {
  return os << "dtype=" << c.dtype << " shape=" << list_str(c.shape) << " dim=" << c.dim
            << " sizes=" << list_str(c.sizes) << " dim2=" << c.dim2
            << " sizes2=" << list_str(c.sizes2) << " layout=" << c.layout << " flag=" << c.flag
            << " sizes_set=" << c.sizes_set << " seed=" << c.seed;
}

// min_ndim 2 for all-to-all; with_int adds int64 (forward-only properties).
inline rc::Gen<PrimCase> gen_prim_case(int world_size, int min_ndim, bool with_int) {
  return rc::gen::exec([=] {
    PrimCase c;
    const int ndim = *rc::gen::inRange(min_ndim, 5);
    c.dtype = *(with_int ? gen_dtype() : gen_float_dtype());
    c.shape = *gen_shape(ndim, 3);
    c.dim = *gen_dim(ndim);
    c.sizes = *gen_shard_sizes(world_size);
    if (ndim >= 2) {
      c.dim2 = *gen_other_dim(ndim, c.dim);
      c.sizes2 = *gen_shard_sizes(world_size);
    }
    c.layout = *gen_layout(ndim);
    c.flag = *rc::gen::arbitrary<bool>();
    c.sizes_set = *rc::gen::weightedElement<bool>({{3, true}, {1, false}});
    c.seed = *rc::gen::inRange<uint64_t>(0, uint64_t{1} << 40);
    return c;
  });
}
inline rc::Gen<PrimCase> gen_any_case(int w) {
  return gen_prim_case(w, 1, true);
}
inline rc::Gen<PrimCase> gen_float_case(int w) {
  return gen_prim_case(w, 1, false);
}
inline rc::Gen<PrimCase> gen_any_case_2d(int w) {
  return gen_prim_case(w, 2, true);
}
inline rc::Gen<PrimCase> gen_float_case_2d(int w) {
  return gen_prim_case(w, 2, false);
}

inline int64_t norm_dim(int64_t d, size_t ndim) {
  return d < 0 ? d + static_cast<int64_t>(ndim) : d;
}
inline int64_t sum_of(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (int64_t x : v) s += x;
  return s;
}

// The base shape with dim set to n (and dim2 to n2 when n2 >= 0).
inline std::vector<int64_t> shape_with(const PrimCase& c, int64_t n, int64_t n2 = -1) {
  std::vector<int64_t> s = c.shape;
  s[norm_dim(c.dim, s.size())] = n;
  if (n2 >= 0) s[norm_dim(c.dim2, s.size())] = n2;
  return s;
}

// Independent data streams of one case: inputs, upstream gradients.
enum class Stream : uint64_t { kInput = 0, kGrad = 1 };
constexpr int kReplicated = 1000;  // "rank" of data that every rank shares
inline uint64_t seed_for(const PrimCase& c, Stream s, int q) {
  return c.seed * 7919 + static_cast<uint64_t>(s) * 104729 + static_cast<uint64_t>(q);
}
inline at::Tensor make(const PrimCase& c, const std::vector<int64_t>& shape, Stream s, int q) {
  return make_data_as(shape, c.dtype.type, seed_for(c, s, q), c.layout.format, c.layout.strided);
}

// Failure with a message (RC_ASSERT's exception carries none over Gloo).
inline void require(bool ok, const std::string& what) {
  if (!ok) throw std::runtime_error(what);
}

inline double dot_f64(const at::Tensor& a, const at::Tensor& b) {
  return (a.detach().to(at::kDouble) * b.detach().to(at::kDouble)).sum().item<double>();
}
inline double sum_over_ranks(const CommPtr& comm, double v) {
  at::Tensor t = at::full({1}, v, at::kDouble);
  comm->all_reduce_sum(t);
  return t.item<double>();
}

// <F(x), y> == <x, B(y)> in float64, within the dtype's precision of the terms' magnitude.
inline void expect_adjoint(double lhs, double rhs, at::ScalarType type, const std::string& what) {
  const double eps = type == at::kHalf       ? 1e-3
                     : type == at::kBFloat16 ? 1e-2
                     : type == at::kFloat    ? 1e-6
                                             : 1e-12;
  if (std::abs(lhs - rhs) > eps * (1.0 + std::abs(lhs) + std::abs(rhs))) {
    throw std::runtime_error(what + ": <F(x), y> = " + std::to_string(lhs) +
                             " but <x, B(y)> = " + std::to_string(rhs));
  }
}

}  // namespace graphshard::props
