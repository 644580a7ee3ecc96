// Every collective of every engine equals its whole-world definition for random uneven (and
// zero) counts and every dtype. Data are small integers, so even sums are exact in f16 and the
// comparison is bitwise: equal to the reference on every rank means identical across ranks.
// The sum-order properties (end) use chosen values whose sum depends on the order of addition.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "generators.h"
#include "graphshard/shapes.h"
#include "harness.h"
#include "sum_order.h"

namespace graphshard::props {
namespace {

struct CountsCase {
  DType dtype;
  std::vector<int64_t> counts;
  uint64_t seed;
};
std::ostream& operator<<(std::ostream& os, const CountsCase& c) {
  os << "dtype=" << c.dtype << " counts=[";
  for (auto v : c.counts) os << v << ' ';
  return os << "] seed=" << c.seed;
}

rc::Gen<CountsCase> gen_counts_case(int w) {
  return rc::gen::build<CountsCase>(
      rc::gen::set(&CountsCase::dtype, gen_dtype()),
      rc::gen::set(&CountsCase::counts, gen_sizes(w, 40)),
      rc::gen::set(&CountsCase::seed, rc::gen::arbitrary<uint32_t>()));
}

at::Tensor rank_data(const CountsCase& c, int q, int64_t n) {
  return make_data({n}, c.dtype.type, c.seed * 131 + static_cast<uint64_t>(q));
}

void all_gather_v_body(const CommPtr& comm, const CountsCase& c) {
  const int w = comm->size(), r = comm->rank();
  std::vector<at::Tensor> pieces;
  for (int q = 0; q < w; ++q) pieces.push_back(rank_data(c, q, c.counts[q]));
  at::Tensor recv = at::full({total(c.counts)}, 7, pieces[0].options());
  comm->all_gather_v(pieces[r], recv, c.counts);
  expect_equal(recv, at::cat(pieces), "all_gather_v on rank " + std::to_string(r));
}

void all_reduce_sum_body(const CommPtr& comm, const CountsCase& c) {
  const int w = comm->size(), r = comm->rank();
  const int64_t n = c.counts[0];
  at::Tensor expected = at::zeros({n}, at::kDouble);
  for (int q = 0; q < w; ++q) expected += rank_data(c, q, n).to(at::kDouble);
  at::Tensor mine = rank_data(c, r, n);
  comm->all_reduce_sum(mine);
  expect_equal(mine, expected.to(c.dtype.type), "all_reduce_sum on rank " + std::to_string(r));
}

// With `own` (a strided tensor), send's piece r holds garbage, which must not be read.
void check_reduce_scatter_v(const CommPtr& comm, const CountsCase& c, bool with_own) {
  const int w = comm->size(), r = comm->rank();
  const int64_t n = total(c.counts);
  at::Tensor full_sum = at::zeros({n}, at::kDouble);
  for (int q = 0; q < w; ++q) full_sum += rank_data(c, q, n).to(at::kDouble);
  const auto [lo, hi] = partition_range(c.counts, r);
  at::Tensor send = rank_data(c, r, n);
  at::Tensor own;
  if (with_own) {
    own = at::zeros({2 * (hi - lo)}, send.options()).slice(0, 0, 2 * (hi - lo), 2);
    own.copy_(send.narrow(0, lo, hi - lo));
    send.narrow(0, lo, hi - lo).fill_(99);
  }
  at::Tensor recv = at::full({hi - lo}, 7, send.options());
  comm->reduce_scatter_v(send, recv, c.counts, own);
  expect_equal(recv, full_sum.narrow(0, lo, hi - lo).to(c.dtype.type),
               std::string("reduce_scatter_v") + (with_own ? " with own" : "") + " on rank " +
                   std::to_string(r));
}

void reduce_scatter_v_body(const CommPtr& comm, const CountsCase& c) {
  check_reduce_scatter_v(comm, c, false);
}

void reduce_scatter_v_own_body(const CommPtr& comm, const CountsCase& c) {
  check_reduce_scatter_v(comm, c, true);
}

// 16-bit sums are float32 sums rounded once: at element j, rank (j + seed) % W holds `big` and
// every other rank 1. Rounded after each addition the sum would stay at `big` (big + 1 rounds
// back to big in float16 at 2048 and in bfloat16 at 256); accumulated in float32 it is
// big + W - 1, then rounded.
rc::Gen<CountsCase> gen_wide_sum_case(int w) {
  return rc::gen::build<CountsCase>(
      rc::gen::set(&CountsCase::dtype, rc::gen::element(DType{at::kHalf}, DType{at::kBFloat16})),
      rc::gen::set(&CountsCase::counts, gen_sizes(w, 40)),
      rc::gen::set(&CountsCase::seed, rc::gen::arbitrary<uint32_t>()));
}

at::Tensor wide_sum_data(const CountsCase& c, int w, int q, int64_t n) {
  const double big = c.dtype.type == at::kHalf ? 2048 : 256;
  at::Tensor t = at::ones({n}, at::kDouble);
  for (int64_t j = 0; j < n; ++j) {
    if (static_cast<int>((static_cast<uint64_t>(j) + c.seed) % w) == q) t[j] = big;
  }
  return t.to(c.dtype.type);
}

at::Tensor wide_sum_expected(const CountsCase& c, int w, int64_t n) {
  const double big = c.dtype.type == at::kHalf ? 2048 : 256;
  return at::full({n}, big + (w - 1), at::kDouble).to(c.dtype.type);
}

void all_reduce_sum_16bit_body(const CommPtr& comm, const CountsCase& c) {
  const int w = comm->size(), r = comm->rank();
  at::Tensor mine = wide_sum_data(c, w, r, c.counts[0]);
  comm->all_reduce_sum(mine);
  expect_equal(mine, wide_sum_expected(c, w, c.counts[0]),
               "16-bit all_reduce_sum on rank " + std::to_string(r));
}

void reduce_scatter_v_16bit_body(const CommPtr& comm, const CountsCase& c) {
  const int w = comm->size(), r = comm->rank();
  const auto [lo, hi] = partition_range(c.counts, r);
  at::Tensor recv = at::full({hi - lo}, 7, at::TensorOptions().dtype(c.dtype.type));
  comm->reduce_scatter_v(wide_sum_data(c, w, r, total(c.counts)), recv, c.counts);
  expect_equal(recv, wide_sum_expected(c, w, hi - lo),
               "16-bit reduce_scatter_v on rank " + std::to_string(r));
}

// All-to-all: rank p sends counts[(p * 7 + q) % W] + p elements to rank q (a full, uneven
// matrix derived from the case, so every rank knows every pair).
int64_t a2a_count(const CountsCase& c, int p, int q) {
  const int w = static_cast<int>(c.counts.size());
  return c.counts[(p * 7 + q) % w] + (c.counts[q] % 2 ? 0 : p % 3);
}

void all_to_all_v_body(const CommPtr& comm, const CountsCase& c) {
  const int w = comm->size(), r = comm->rank();
  std::vector<int64_t> send_counts(w), recv_counts(w);
  for (int q = 0; q < w; ++q) {
    send_counts[q] = a2a_count(c, r, q);
    recv_counts[q] = a2a_count(c, q, r);
  }
  std::vector<at::Tensor> expected;
  for (int q = 0; q < w; ++q) {
    std::vector<int64_t> sc(w);
    for (int k = 0; k < w; ++k) sc[k] = a2a_count(c, q, k);
    const auto [lo, hi] = partition_range(sc, r);
    expected.push_back(rank_data(c, q, total(sc)).narrow(0, lo, hi - lo));
  }
  at::Tensor recv = at::full({total(recv_counts)}, 7, at::TensorOptions().dtype(c.dtype.type));
  comm->all_to_all_v(rank_data(c, r, total(send_counts)), send_counts, recv, recv_counts);
  expect_equal(recv, at::cat(expected), "all_to_all_v on rank " + std::to_string(r));
}

// ---- Sums in rank order (SPEC §5) ----------------------------------------------------------
// Values whose sum depends on the order of addition (sum_order.h), W >= 3, every float dtype:
// each rank's result is bitwise the rank-order sum ((x0 + x1) + x2) + ... computed here in the
// same dtype (16-bit floats: in float32, rounded once). Catches an engine that adds in another
// order (reverse, own piece first, a ring's rotation) or in different orders on different
// ranks.
struct OrderCase {
  DType dtype;
  std::vector<int64_t> counts;  // total >= 1
  bool with_own = false;        // reduce_scatter_v: this rank's piece from a strided `own`
  uint64_t seed = 0;
};
std::ostream& operator<<(std::ostream& os, const OrderCase& c) {
  os << "dtype=" << c.dtype << " counts=[";
  for (auto v : c.counts) os << v << ' ';
  return os << "] with_own=" << c.with_own << " seed=" << c.seed;
}

rc::Gen<OrderCase> gen_order_case(int w) {
  return rc::gen::build<OrderCase>(
      rc::gen::set(&OrderCase::dtype, gen_float_dtype()),
      rc::gen::set(&OrderCase::counts,
                   rc::gen::suchThat(gen_sizes(w, 24),
                                     [](const std::vector<int64_t>& s) { return total(s) > 0; })),
      rc::gen::set(&OrderCase::with_own, rc::gen::arbitrary<bool>()),
      rc::gen::set(&OrderCase::seed, rc::gen::arbitrary<uint32_t>()));
}

void all_reduce_sum_order_body(const CommPtr& comm, const OrderCase& c) {
  if (sum_order::skip_sum_order(comm, "Communicator.AllReduceSumAddsInRankOrder")) return;
  const int w = comm->size(), r = comm->rank();
  const auto xs = sum_order::order_sensitive_summands(w, c.dtype.type, total(c.counts), c.seed);
  at::Tensor mine = xs[r].clone();
  comm->all_reduce_sum(mine);
  const std::string what = "all_reduce_sum on rank " + std::to_string(r);
  sum_order::expect_rank_order(
      mine, sum_order::rank_order_sum(xs), xs, [](const at::Tensor& s) { return s; }, what);
  sum_order::expect_same_bits_on_every_rank(comm, mine, what);
}

void reduce_scatter_v_order_body(const CommPtr& comm, const OrderCase& c) {
  if (sum_order::skip_sum_order(comm, "Communicator.ReduceScatterVAddsInRankOrder")) return;
  const int w = comm->size(), r = comm->rank();
  const auto xs = sum_order::order_sensitive_summands(w, c.dtype.type, total(c.counts), c.seed);
  const auto [lo, hi] = partition_range(c.counts, r);
  at::Tensor send = xs[r].clone();
  at::Tensor own;
  if (c.with_own) {
    own = at::zeros({2 * (hi - lo)}, send.options()).slice(0, 0, 2 * (hi - lo), 2);
    own.copy_(send.narrow(0, lo, hi - lo));
    send.narrow(0, lo, hi - lo).fill_(99);
  }
  at::Tensor recv = at::full({hi - lo}, 7, send.options());
  comm->reduce_scatter_v(send, recv, c.counts, own);
  auto piece = [&, lo = lo, hi = hi](const at::Tensor& s) { return s.narrow(0, lo, hi - lo); };
  sum_order::expect_rank_order(recv, piece(sum_order::rank_order_sum(xs)), xs, piece,
                               std::string("reduce_scatter_v") + (c.with_own ? " with own" : "") +
                                   " on rank " + std::to_string(r));
}

// Buffers past Communicator::kLatencyBoundBytes take another path on Gloo (pieces pipelined in
// chunks of 1 MiB, summed by their owners as they arrive; on two ranks Gloo's own ring), in place
// and out of place.
struct LargeCase {
  DType dtype;
  int64_t n = 0;
  bool out_of_place = false;
  uint64_t seed = 0;
};
std::ostream& operator<<(std::ostream& os, const LargeCase& c) {
  return os << "dtype=" << c.dtype << " n=" << c.n << " out_of_place=" << c.out_of_place
            << " seed=" << c.seed;
}

rc::Gen<LargeCase> gen_large_case(int /*w*/) {
  return rc::gen::exec([] {
    LargeCase c;
    c.dtype = *gen_float_dtype();
    // From below the latency-bound size (in float32 elements) to two 1 MiB chunks per piece of
    // a W = 2 float64 buffer (every rank builds every rank's data: keep it cheap on 8 ranks).
    c.n = *rc::gen::inRange<int64_t>(Communicator::kLatencyBoundBytes / 8, 1 << 19);
    c.out_of_place = *rc::gen::arbitrary<bool>();
    c.seed = *rc::gen::arbitrary<uint32_t>();
    return c;
  });
}

// Returns the sum as all_reduce_sum gave it; an out-of-place send must be left as it was.
at::Tensor reduce_large(const CommPtr& comm, const LargeCase& c, const at::Tensor& mine) {
  if (!c.out_of_place) {
    at::Tensor buffer = mine.clone();
    comm->all_reduce_sum(buffer);
    return buffer;
  }
  at::Tensor out = at::full_like(mine, 7);
  comm->all_reduce_sum(mine, out);
  return out;
}

void all_reduce_large_body(const CommPtr& comm, const LargeCase& c) {
  const int w = comm->size(), r = comm->rank();
  const CountsCase data{c.dtype, {}, c.seed};
  at::Tensor expected = at::zeros({c.n}, at::kDouble);
  for (int q = 0; q < w; ++q) expected += rank_data(data, q, c.n).to(at::kDouble);
  const at::Tensor mine = rank_data(data, r, c.n), before = mine.clone();
  const std::string what = "large all_reduce_sum on rank " + std::to_string(r);
  expect_equal(reduce_large(comm, c, mine), expected.to(c.dtype.type), what);
  expect_equal(mine, before, what + ": send modified");
}

void all_reduce_large_order_body(const CommPtr& comm, const LargeCase& c) {
  if (sum_order::skip_sum_order(comm, "Communicator.AllReduceSumOfLargeBuffersAddsInRankOrder"))
    return;
  const int w = comm->size(), r = comm->rank();
  const auto xs = sum_order::order_sensitive_summands(w, c.dtype.type, c.n, c.seed);
  const std::string what = "large all_reduce_sum on rank " + std::to_string(r);
  const at::Tensor sum = reduce_large(comm, c, xs[r]);
  sum_order::expect_rank_order(
      sum, sum_order::rank_order_sum(xs), xs, [](const at::Tensor& s) { return s; }, what);
  sum_order::expect_same_bits_on_every_rank(comm, sum, what);
}

}  // namespace

GRAPHSHARD_PROPERTY(Communicator, AllReduceSumOfLargeBuffersMatchesWholeWorldSum, gen_large_case,
                    all_reduce_large_body);
GRAPHSHARD_PROPERTY_MIN_W(Communicator, AllReduceSumOfLargeBuffersAddsInRankOrder,
                          sum_order::kMinWorld, gen_large_case, all_reduce_large_order_body);
GRAPHSHARD_PROPERTY(Communicator, AllGatherVMatchesConcatenation, gen_counts_case,
                    all_gather_v_body);
GRAPHSHARD_PROPERTY(Communicator, AllReduceSumMatchesWholeWorldSum, gen_counts_case,
                    all_reduce_sum_body);
GRAPHSHARD_PROPERTY(Communicator, ReduceScatterVMatchesSumThenPiece, gen_counts_case,
                    reduce_scatter_v_body);
GRAPHSHARD_PROPERTY(Communicator, ReduceScatterVReadsOwnInsteadOfSendPiece, gen_counts_case,
                    reduce_scatter_v_own_body);
GRAPHSHARD_PROPERTY(Communicator, AllReduceSumOf16BitFloatsAccumulatesInFloat32, gen_wide_sum_case,
                    all_reduce_sum_16bit_body);
GRAPHSHARD_PROPERTY(Communicator, ReduceScatterVOf16BitFloatsAccumulatesInFloat32,
                    gen_wide_sum_case, reduce_scatter_v_16bit_body);
GRAPHSHARD_PROPERTY(Communicator, AllToAllVMatchesTranspose, gen_counts_case, all_to_all_v_body);
GRAPHSHARD_PROPERTY_MIN_W(Communicator, AllReduceSumAddsInRankOrder, sum_order::kMinWorld,
                          gen_order_case, all_reduce_sum_order_body);
GRAPHSHARD_PROPERTY_MIN_W(Communicator, ReduceScatterVAddsInRankOrder, sum_order::kMinWorld,
                          gen_order_case, reduce_scatter_v_order_body);

}  // namespace graphshard::props
