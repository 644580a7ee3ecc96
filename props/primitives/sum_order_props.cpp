// The reducing primitives add rank contributions in rank order (SPEC §2 "reduce", §5): with
// values whose sum depends on the order of addition (sum_order.h) on W >= 3 ranks, every float
// dtype and layout, each rank's result is bitwise the rank-order sum ((x0 + x1) + x2) + ...
// computed here in the same dtype (16-bit floats: in float32, rounded once), and ranks that hold
// the whole sum hold the same bits. Catches a primitive or engine that adds in another order
// (reverse, own contribution first, a ring's rotation), sums a packed or non-leading-dim piece
// out of rank order, or gives ranks different bits.
//
// Run on simulated ranks (W in 3..8) and replayed over Gloo (W = 2 skips: two contributions
// cannot be reordered; GRAPHSHARD_GLOO_COLLECTIVES=native skips: no rank-order promise).
#include <functional>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "graphshard/primitives.h"
#include "harness.h"
#include "primitives.h"  // reference
#include "primitives_cases.h"
#include "sum_order.h"

namespace graphshard::props {
namespace {

std::string on(const char* fn, const CommPtr& comm) {
  return std::string(fn) + " on rank " + std::to_string(comm->rank()) + " of " +
         std::to_string(comm->size());
}

// A float case (primitives_cases.h) whose summed tensor has at least one element.
rc::Gen<PrimCase> gen_order_prim_case(int w) {
  return rc::gen::suchThat(gen_float_case(w), [](const PrimCase& c) {
    int64_t n = 1;
    for (int64_t e : shape_with(c, sum_of(c.sizes))) n *= e;
    return n > 0;
  });
}

// Same values, laid out as the case asks (as make_data_as does): channels-last or strided.
at::Tensor laid_out(const at::Tensor& t, const Layout& layout) {
  if (layout.strided && t.dim() > 0) {
    std::vector<int64_t> big = t.sizes().vec();
    big.back() = 2 * t.size(-1) + 1;
    at::Tensor view = at::zeros(big, t.options()).narrow(-1, 1, t.size(-1));
    view.copy_(t);
    return view;
  }
  if (layout.format == at::MemoryFormat::ChannelsLast && t.dim() == 4) {
    return t.contiguous(at::MemoryFormat::ChannelsLast);
  }
  return t;
}

// Every rank's summand of the full shape, order-sensitive, from the case's seed and stream.
std::vector<at::Tensor> order_summands(const PrimCase& c, int w, Stream s) {
  const auto shape = shape_with(c, sum_of(c.sizes));
  int64_t n = 1;
  for (int64_t e : shape) n *= e;
  auto xs = sum_order::order_sensitive_summands(w, c.dtype.type, n, seed_for(c, s, 0));
  for (auto& x : xs) x = laid_out(x.view(shape), c.layout);
  return xs;
}

at::Tensor same(const at::Tensor& s) {
  return s;
}

// ---- ReduceTensor: P -> R -------------------------------------------------------------------
void reduce_order(const CommPtr& comm, const PrimCase& c) {
  if (sum_order::skip_sum_order(comm, "ReduceTensor.ForwardAddsInRankOrder")) return;
  const auto xs = order_summands(c, comm->size(), Stream::kInput);
  const at::Tensor& x = xs[comm->rank()];
  const at::Tensor before = x.clone();
  const at::Tensor out = reduce_tensor(x, comm);
  sum_order::expect_rank_order(out, sum_order::rank_order_sum(xs), xs, same,
                               on("reduce_tensor", comm));
  sum_order::expect_same_bits_on_every_rank(comm, out, on("reduce_tensor", comm));
  require(sum_order::same_bits(x, before), on("reduce_tensor", comm) + ": input modified");
}

// ---- ReduceShardTensor: P -> S(d), one reduce-scatter ---------------------------------------
void reduce_shard_order(const CommPtr& comm, const PrimCase& c) {
  if (sum_order::skip_sum_order(comm, "ReduceShardTensor.ForwardAddsInRankOrder")) return;
  const int r = comm->rank();
  const auto xs = order_summands(c, comm->size(), Stream::kInput);
  const at::Tensor out = reduce_shard_tensor(xs[r], c.dim, c.sizes, comm);
  auto piece = [&](const at::Tensor& s) { return reference::shard(s, c.dim, c.sizes, r); };
  sum_order::expect_rank_order(out, piece(sum_order::rank_order_sum(xs)), xs, piece,
                               on("reduce_shard_tensor", comm));
}

// ---- SyncTensor backward: P -> R (then piece r when the forward gathered) -------------------
void sync_backward_order(const CommPtr& comm, const PrimCase& c) {
  if (sum_order::skip_sum_order(comm, "SyncTensor.BackwardAddsInRankOrder")) return;
  const int r = comm->rank();
  const bool gathers = c.flag && c.sizes_set;
  const at::Tensor x = make(c, shape_with(c, gathers ? c.sizes[r] : sum_of(c.sizes)),
                            Stream::kInput, gathers ? r : kReplicated)
                           .detach()
                           .requires_grad_(true);
  const auto ys = order_summands(c, comm->size(), Stream::kGrad);  // upstream gradients: P
  const at::Tensor out =
      sync_tensor(x, c.dim, c.sizes_set ? ShardSizes(c.sizes) : std::nullopt, comm, c.flag);
  const at::Tensor gx = torch::autograd::grad({out}, {x}, {ys[r]})[0];
  auto piece = [&](const at::Tensor& s) {
    return gathers ? reference::shard(s, c.dim, c.sizes, r) : s;
  };
  const std::string what =
      on(gathers ? "sync_tensor (gathering) backward" : "sync_tensor backward", comm);
  sum_order::expect_rank_order(gx, piece(sum_order::rank_order_sum(ys)), ys, piece, what);
  if (!gathers) sum_order::expect_same_bits_on_every_rank(comm, gx, what);
}

}  // namespace

GRAPHSHARD_PROPERTY_MIN_W(ReduceTensor, ForwardAddsInRankOrder, sum_order::kMinWorld,
                          gen_order_prim_case, reduce_order);
GRAPHSHARD_PROPERTY_MIN_W(ReduceShardTensor, ForwardAddsInRankOrder, sum_order::kMinWorld,
                          gen_order_prim_case, reduce_shard_order);
GRAPHSHARD_PROPERTY_MIN_W(SyncTensor, BackwardAddsInRankOrder, sum_order::kMinWorld,
                          gen_order_prim_case, sync_backward_order);

}  // namespace graphshard::props
