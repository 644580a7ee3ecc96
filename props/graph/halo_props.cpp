// Halo exchange (SPEC §3b) on W simulated ranks (and replayed over Gloo) against the naive
// whole-graph reference (reference/halo.h), on symmetric and directed plain graphs, balanced and
// random node ranges (empty ranks, ranks with nothing to send), from the whole edge list or from
// each rank's shard:
//   - build_halo_info: every field equals the reference's; verify_halo_info accepts it and
//     rejects, on every rank, a send list that disagrees with what its peer expects;
//   - halo_exchange: forward equals the reference, the input gradient equals the reference's
//     rank-ordered sum bitwise, and the backward is the adjoint of the forward;
//   - bad arguments raise c10::ValueError on every rank, before any communication.
#include <functional>
#include <string>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "generators.h"
#include "graph.h"  // reference/graph.h
#include "graph_generators.h"
#include "graphshard/halo.h"
#include "halo.h"  // reference/halo.h
#include "harness.h"
#include "primitives_cases.h"

namespace graphshard::props {
namespace {

namespace ref = graphshard::reference;

struct HaloCase {
  GraphSpec g;               // plain (n_src == n_dst)
  bool symmetric = false;    // every edge with its reverse (what anemoi assumes); else directed
  bool shard_edges = false;  // build from this rank's edges (edge_shard_sizes) or the whole graph
  bool balanced = true;      // balanced node ranges, else random ones (empty ranks included)
  DType dtype{at::kDouble};
  std::vector<int64_t> trailing;
};
std::ostream& operator<<(std::ostream& os, const HaloCase& c) {
  return os << c.g << " symmetric=" << c.symmetric << " shard_edges=" << c.shard_edges
            << " balanced=" << c.balanced << " dtype=" << c.dtype
            << " trailing=" << list_str(c.trailing);
}

rc::Gen<HaloCase> gen_halo_case(int /*world_size*/) {
  return rc::gen::exec([] {
    HaloCase c;
    c.g = *gen_graph_spec(300, 2000, 1);
    c.g.n_dst = c.g.n_src;
    c.g.plain = true;
    c.symmetric = *rc::gen::arbitrary<bool>();
    c.shard_edges = *rc::gen::arbitrary<bool>();
    c.balanced = *rc::gen::arbitrary<bool>();
    c.dtype = *gen_float_dtype();
    c.trailing = *gen_shape(*rc::gen::inRange(0, 3), 3);
    return c;
  });
}

at::Tensor halo_graph(const HaloCase& c) {
  at::Tensor ei = make_edge_index(c.g);
  if (c.symmetric) ei = at::cat({ei, ei.flip(0)}, 1);
  return ref::sort_edge_index_by_dst(ei).edge_index;
}

GraphPartition partition_of(const at::Tensor& ei, const HaloCase& c, int w) {
  GraphPartition p;
  p.num_nodes = {c.g.n_src, c.g.n_src};
  p.num_edges = ei.size(1);
  p.num_parts = w;
  p.dst_splits = c.balanced ? ref::graph_balanced(c.g.n_src, w) : random_split(c.g.n_src, w, c.g.seed);
  const at::Tensor dst = ei.select(0, 1).to(at::kLong);
  for (int q = 0; q < w; ++q) {
    const auto [lo, hi] = partition_range(p.dst_splits, q);
    p.edge_splits.push_back(((dst >= lo) & (dst < hi)).sum().item<int64_t>());
  }
  return p;
}

struct Built {
  at::Tensor ei;
  GraphPartition p;
  HaloInfo h;
};
Built build(const CommPtr& comm, const HaloCase& c, bool debug) {
  Built b;
  b.ei = halo_graph(c);
  b.p = partition_of(b.ei, c, comm->size());
  const int r = comm->rank();
  const auto [elo, ehi] = partition_range(b.p.edge_splits, r);
  b.h = c.shard_edges
            ? build_halo_info(b.p, b.ei.narrow(1, elo, ehi - elo), comm, b.p.edge_splits, debug)
            : build_halo_info(b.p, b.ei, comm, std::nullopt, debug);
  return b;
}

at::Tensor longs(const std::vector<int64_t>& v) {
  return at::tensor(v, at::kLong);
}

void info_body(const CommPtr& comm, const HaloCase& c) {
  const int w = comm->size(), r = comm->rank();
  const Built b = build(comm, c, /*debug=*/true);
  const ref::RefHalo e = ref::halo_info(b.ei, b.p.dst_splits, r);
  RC_ASSERT(b.h.num_local_nodes == e.num_local);
  RC_ASSERT(b.h.num_halo_nodes == static_cast<int64_t>(e.halo_global.size()));
  RC_ASSERT(b.h.recv_counts == e.recv_counts);
  RC_ASSERT(static_cast<int>(b.h.send_indices.size()) == w);
  for (int q = 0; q < w; ++q)
    expect_equal(b.h.send_indices[q], longs(e.send_local[q]), "send_indices[" + std::to_string(q) + "]");
  RC_ASSERT(b.h.edge_index_local.scalar_type() == b.ei.scalar_type());
  expect_equal(b.h.edge_index_local.to(at::kLong), e.edge_index_local, "edge_index_local");
  RC_ASSERT(b.h.recv_global_ids.has_value());
  expect_equal(at::cat(*b.h.recv_global_ids), longs(e.halo_global), "recv_global_ids");
  verify_halo_info(b.h, b.p, comm);
  expect_equal(b.ei, halo_graph(c), "input edge_index");  // not modified
}

void exchange_body(const CommPtr& comm, const HaloCase& c) {
  const int w = comm->size(), r = comm->rank();
  const Built b = build(comm, c, /*debug=*/false);
  const at::Tensor x_full = make_rows(c.g.n_src, c.trailing, c.dtype.type, c.g.seed + 11);
  const auto [lo, hi] = partition_range(b.p.dst_splits, r);
  const at::Tensor x = x_full.narrow(0, lo, hi - lo).clone().requires_grad_(true);
  const at::Tensor out = halo_exchange(x, b.h, comm);
  if (w == 1) {
    RC_ASSERT(out.is_same(x));
    return;
  }
  std::vector<ref::RefHalo> halos;
  for (int q = 0; q < w; ++q) halos.push_back(ref::halo_info(b.ei, b.p.dst_splits, q));
  expect_equal(out, ref::halo_forward(x_full, b.p.dst_splits, halos[r], r), "halo_exchange");
  // Every rank draws every rank's upstream gradient, so it can compute the reference's sum.
  std::vector<at::Tensor> ys;
  for (int q = 0; q < w; ++q) {
    const int64_t rows = halos[q].num_local + static_cast<int64_t>(halos[q].halo_global.size());
    ys.push_back(make_rows(rows, c.trailing, c.dtype.type, c.g.seed + 100 + q));
  }
  const at::Tensor gx = torch::autograd::grad({out}, {x}, {ys[r]})[0];
  expect_equal(gx, ref::halo_backward(ys, halos, b.p.dst_splits, r), "halo_exchange backward");
  expect_adjoint(sum_over_ranks(comm, dot_f64(out, ys[r])), sum_over_ranks(comm, dot_f64(x, gx)),
                 c.dtype.type, "halo_exchange on rank " + std::to_string(r));
  expect_equal(x, x_full.narrow(0, lo, hi - lo), "input x");  // not modified
}

// A send list that disagrees with what its peer expects fails verify_halo_info on every rank.
void verify_rejects_body(const CommPtr& comm, const HaloCase& c) {
  const int w = comm->size();
  if (w < 2) return;
  Built b = build(comm, c, /*debug=*/true);
  // Rank 0 drops the last node it sends to rank 1, if it sends any (every rank can tell).
  const ref::RefHalo e0 = ref::halo_info(b.ei, b.p.dst_splits, 0);
  if (e0.send_local[1].empty()) return;
  if (comm->rank() == 0) {
    const at::Tensor& s = b.h.send_indices[1];
    b.h.send_indices[1] = s.narrow(0, 0, s.numel() - 1);
  }
  try {
    verify_halo_info(b.h, b.p, comm);
  } catch (const c10::ValueError& err) {
    const std::string m = err.what();
    RC_ASSERT(m.find("graphshard::verify_halo_info") != std::string::npos);
    RC_ASSERT(m.find("rank 1 received " + std::to_string(e0.send_local[1].size() - 1) +
                     " nodes from rank 0 and expected " +
                     std::to_string(e0.send_local[1].size())) != std::string::npos);
    return;
  }
  RC_FAIL("verify_halo_info accepted a send list its peer does not expect");
}

// Arguments that every rank gets alike raise c10::ValueError on every rank before communicating.
void bad_arguments_body(const CommPtr& comm, const HaloCase& c) {
  const int w = comm->size();
  const Built b = build(comm, c, /*debug=*/false);
  auto raises = [&](const std::string& what, const std::function<void()>& f) {
    try {
      f();
    } catch (const c10::ValueError& err) {
      RC_ASSERT(std::string(err.what()).find(what) != std::string::npos);
      return;
    }
    RC_FAIL("no error for " + what);
  };
  GraphPartition wrong_parts = b.p;
  wrong_parts.num_parts = w + 1;
  raises("partition.num_parts", [&] { build_halo_info(wrong_parts, b.ei, comm); });
  GraphPartition bipartite = b.p;
  bipartite.num_nodes.first += 1;
  raises("a plain graph", [&] { build_halo_info(bipartite, b.ei, comm); });
  if (b.ei.size(1) > 0) {
    at::Tensor out_of_range = b.ei.clone();
    out_of_range[0][0] = c.g.n_src;
    raises("edge_index", [&] { build_halo_info(b.p, out_of_range, comm); });
  }
  if (w > 1) {
    const at::Tensor x = at::zeros({b.h.num_local_nodes + 1, 2}, at::kFloat);
    raises("num_local_nodes", [&] { halo_exchange(x, b.h, comm); });
    raises("recv_global_ids", [&] { verify_halo_info(b.h, b.p, comm); });  // built without debug
  }
}

}  // namespace

GRAPHSHARD_PROPERTY(BuildHaloInfo, MatchesReferenceAndVerifies, gen_halo_case, info_body);
GRAPHSHARD_PROPERTY(HaloExchange, ForwardBackwardMatchReferenceAndAreAdjoint, gen_halo_case,
                    exchange_body);
GRAPHSHARD_PROPERTY(VerifyHaloInfo, RejectsAMismatchOnEveryRank, gen_halo_case,
                    verify_rejects_body);
GRAPHSHARD_PROPERTY(HaloExchange, BadArgumentsRaiseValueErrorOnEveryRank, gen_halo_case,
                    bad_arguments_body);

}  // namespace graphshard::props
