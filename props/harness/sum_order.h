// Sums whose bits depend on the order of addition, for the properties that check that reduces
// add rank contributions in rank order (SPEC §5; comm.h, buffer contract), on W >= 3 ranks.
//
// Element j of rank q's summand, in a dtype with accumulation type A (float32 for 16-bit
// floats, the dtype itself otherwise) and u a pseudo-random value in [0, 1) per (seed, q, j):
//   rank 0:  big = (1 + u) 2^E, where A's ulp of big is 2^e (f32 2^27 / 2^4, f64 2^56 / 2^4,
//            f16 2^14 / 2^-9, bf16 2^30 / 2^7);
//   rank 1:  -big + k 2^e, k in [-3, 3] (k = 0 for 16-bit floats, whose result is rounded to
//            the dtype afterwards and would lose the small terms' bits to a non-zero k);
//   rank q >= 2: +-(1 + u) 2^(e + m), m in [-5, 2]: small terms of varied magnitude.
// In rank order big and -big cancel first (exactly) and the small terms are added at their own
// scale; in any order that meets big before -big with a small term in between, that term is
// rounded to a multiple of 2^e. So the rank-order sum differs from the reverse order and from
// every rotation (a ring's orders) in almost every element; order_sensitive_summands checks
// that on the case itself and draws other values until it holds.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "graphshard/comm.h"
#include "harness.h"

// Properties here use GRAPHSHARD_PROPERTY_MIN_W (harness.h) with kMinWorld; skip_sum_order
// makes the Gloo replay return early below it, saying so.

namespace graphshard::props::sum_order {

constexpr int kMinWorld = 3;  // with two contributions, a + b == b + a: order cannot matter

// True when this rank's world and engine make no rank-order promise to test: W < 3, Gloo's own
// collectives (GRAPHSHARD_GLOO_COLLECTIVES=native) or an engine other than sim and Gloo (NCCL):
// these give every rank the same bits, but in their own order (comm.h). Marks the running test
// skipped, with the reason, once per property and process.
inline bool skip_sum_order(const CommPtr& comm, const std::string& property) {
  const char* choice = std::getenv("GRAPHSHARD_GLOO_COLLECTIVES");
  const bool native = choice && std::string(choice) == "native";
  std::string why;
  if (comm->size() < kMinWorld) {
    why = "W = " + std::to_string(comm->size()) +
          " < 3: a sum of two contributions does not depend on their order";
  } else if (comm->engine() == "gloo" && native) {
    why =
        "GRAPHSHARD_GLOO_COLLECTIVES=native: Gloo's own collectives add in their own order, "
        "not rank order (comm.h)";
  } else if (comm->engine() != "sim" && comm->engine() != "gloo") {
    why = "engine " + comm->engine() + " adds in its own order, not rank order (comm.h)";
  }
  if (why.empty()) return false;
  static std::mutex m;
  static std::set<std::string> said;
  std::lock_guard<std::mutex> lk(m);
  if (said.insert(property).second) [&] { GTEST_SKIP() << property << ": " << why; }();
  return true;
}

// ---- Values -----------------------------------------------------------------------------
inline uint64_t mix(uint64_t x) {  // splitmix64: the same values on every rank and platform
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
inline double unit(uint64_t h) {
  return static_cast<double>(h >> 11) * 0x1.0p-53;
}

inline at::ScalarType accumulation_of(at::ScalarType t) {
  return t == at::kHalf || t == at::kBFloat16 ? at::kFloat : t;
}

// Whole-world sum in the given order of ranks, in the accumulation type, rounded once to the
// dtype: ((x[o0] + x[o1]) + x[o2]) + ...
inline at::Tensor sum_in_order(const std::vector<at::Tensor>& xs, const std::vector<int>& order) {
  const at::ScalarType dtype = xs[0].scalar_type(), acc = accumulation_of(dtype);
  at::Tensor s = xs[order[0]].detach().to(acc).contiguous().clone();
  for (size_t i = 1; i < order.size(); ++i) s = s + xs[order[i]].detach().to(acc);
  return s.to(dtype).contiguous();
}
inline std::vector<int> rotation(int w, int k) {  // k, k+1, ..., k-1 (k = 0: rank order)
  std::vector<int> o(w);
  for (int i = 0; i < w; ++i) o[i] = (k + i) % w;
  return o;
}
inline at::Tensor rank_order_sum(const std::vector<at::Tensor>& xs) {
  return sum_in_order(xs, rotation(static_cast<int>(xs.size()), 0));
}

// The other orders a sensitive case must tell apart from rank order: reverse, every rotation.
inline std::vector<std::pair<std::string, std::vector<int>>> other_orders(int w) {
  std::vector<int> rev(w);
  for (int i = 0; i < w; ++i) rev[i] = w - 1 - i;
  std::vector<std::pair<std::string, std::vector<int>>> out{{"reverse rank order", rev}};
  for (int k = 1; k < w; ++k)
    out.push_back({"rank order from rank " + std::to_string(k), rotation(w, k)});
  return out;
}

// The tensor's bits as integers of its element size (so -0 != 0 and NaN == NaN, bitwise).
inline at::Tensor bits(const at::Tensor& t) {
  const at::Tensor c = t.detach().cpu().contiguous();
  const at::ScalarType as = c.element_size() == 2   ? at::kShort
                            : c.element_size() == 4 ? at::kInt
                                                    : at::kLong;
  return c.view(as);
}
inline bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() &&
         at::equal(bits(a), bits(b));
}

// W 1-D summands of n >= 1 elements in dtype as described at the top, from seed; redrawn (with
// a salt) until the rank-order sum differs bitwise from every other order in at least one element.
inline std::vector<at::Tensor> order_sensitive_summands(int w, at::ScalarType dtype, int64_t n,
                                                        uint64_t seed) {
  if (w < kMinWorld || n < 1)
    throw std::invalid_argument("order_sensitive_summands: W >= 3, n >= 1");
  int big_exp = 27, ulp_exp = 4;                          // float32
  if (dtype == at::kDouble) big_exp = 56, ulp_exp = 4;    // 53-bit mantissa
  if (dtype == at::kHalf) big_exp = 14, ulp_exp = -9;     // f16 range, f32 sum
  if (dtype == at::kBFloat16) big_exp = 30, ulp_exp = 7;  // 8-bit mantissa, f32 sum
  const bool sixteen = dtype == at::kHalf || dtype == at::kBFloat16;
  for (uint64_t salt = 0; salt < 32; ++salt) {
    auto draw = [&](int q, int64_t j, uint64_t stream) {
      return mix(mix(mix(seed ^ (salt << 40)) + static_cast<uint64_t>(q) * 0x10001 + stream) +
                 static_cast<uint64_t>(j));
    };
    std::vector<std::vector<double>> v(w, std::vector<double>(n));
    for (int64_t j = 0; j < n; ++j) {
      v[0][j] = std::ldexp(1.0 + unit(draw(0, j, 0)), big_exp);
      for (int q = 2; q < w; ++q) {
        const int m = static_cast<int>(draw(q, j, 1) % 8) - 5;
        const double sign = draw(q, j, 2) % 4 == 0 ? -1.0 : 1.0;
        v[q][j] = sign * std::ldexp(1.0 + unit(draw(q, j, 0)), ulp_exp + m);
      }
    }
    std::vector<at::Tensor> xs(w);
    auto as_tensor = [&](const std::vector<double>& d) {
      return at::tensor(d, at::TensorOptions().dtype(at::kDouble)).to(dtype);
    };
    for (int q = 0; q < w; ++q) xs[q] = as_tensor(v[q]);
    // Rank 1 negates rank 0's big term as stored in the dtype, then adds k ulps.
    for (int64_t j = 0; j < n; ++j) {
      const int k = sixteen ? 0 : static_cast<int>(draw(1, j, 0) % 7) - 3;
      v[1][j] = std::ldexp(static_cast<double>(k), ulp_exp);
    }
    xs[1] = (at::tensor(v[1], at::TensorOptions().dtype(at::kDouble)) - xs[0].to(at::kDouble))
                .to(dtype);
    const at::Tensor ranked = rank_order_sum(xs);
    bool sensitive = true;
    for (const auto& [name, order] : other_orders(w))
      sensitive = sensitive && !same_bits(sum_in_order(xs, order), ranked);
    if (sensitive) return xs;
  }
  throw std::runtime_error("order_sensitive_summands: no order-sensitive values in 32 draws");
}

// ---- Checks -----------------------------------------------------------------------------
inline std::string element_str(const at::Tensor& t, int64_t j) {
  std::ostringstream os;
  os.precision(17);
  const at::Tensor b = bits(t).reshape({-1});
  auto raw = static_cast<uint64_t>(b[j].item<int64_t>());
  if (b.element_size() < 8) raw &= (uint64_t{1} << (8 * b.element_size())) - 1;
  os << t.detach().cpu().contiguous().reshape({-1})[j].to(at::kDouble).item<double>() << " (bits 0x"
     << std::hex << raw << ")";
  return os.str();
}

// actual must equal, bitwise, `expected` (the rank-order sum of xs, or its piece). On failure
// the message names the first differing element and, when one matches, the order it was summed
// in. `piece_of` maps an order's whole-world sum to the part this rank compares.
template <typename PieceOf>
void expect_rank_order(const at::Tensor& actual, const at::Tensor& expected,
                       const std::vector<at::Tensor>& xs, PieceOf piece_of,
                       const std::string& what) {
  if (actual.scalar_type() == expected.scalar_type() && actual.sizes() == expected.sizes() &&
      same_bits(actual, expected)) {
    return;
  }
  std::ostringstream os;
  os << what << ": not the rank-order sum ((x0 + x1) + x2) + ... in " << expected.scalar_type();
  if (actual.scalar_type() != expected.scalar_type() || actual.sizes() != expected.sizes()) {
    os << ": expected " << expected.scalar_type() << expected.sizes() << ", got "
       << actual.scalar_type() << actual.sizes();
    throw std::runtime_error(os.str());
  }
  const at::Tensor differ = bits(actual).reshape({-1}) != bits(expected).reshape({-1});
  const int64_t j = differ.nonzero()[0][0].item<int64_t>();
  os << " (" << differ.sum().item<int64_t>() << " of " << actual.numel()
     << " elements differ); first at flat index " << j << ": expected " << element_str(expected, j)
     << ", got " << element_str(actual, j);
  for (const auto& [name, order] : other_orders(static_cast<int>(xs.size()))) {
    const at::Tensor other = piece_of(sum_in_order(xs, order));
    if (same_bits(other.reshape({-1})[j], actual.contiguous().reshape({-1})[j])) {
      os << " = the sum in " << name;
      break;
    }
  }
  throw std::runtime_error(os.str());
}

// Every rank holds the same bits as every other (gathered as the tensor's own dtype: a copy).
inline void expect_same_bits_on_every_rank(const CommPtr& comm, const at::Tensor& result,
                                           const std::string& what) {
  const int w = comm->size();
  const at::Tensor mine = result.detach().contiguous().reshape({-1});
  const int64_t n = mine.numel();
  at::Tensor all = at::empty({w * n}, mine.options());
  comm->all_gather_v(mine, all, std::vector<int64_t>(w, n));
  for (int q = 0; q < w; ++q) {
    if (!same_bits(all.narrow(0, q * n, n), mine)) {
      throw std::runtime_error(what + ": rank " + std::to_string(q) +
                               "'s result differs bitwise from rank " +
                               std::to_string(comm->rank()) + "'s");
    }
  }
}

}  // namespace graphshard::props::sum_order
