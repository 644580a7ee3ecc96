// The local graph functions (no communication) equal the naive reference exactly, keep their
// partition invariants, and give identical results for 1 and 2 intra-op threads.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "generators.h"
#include "graph.h"  // reference/graph.h
#include "graph_generators.h"
#include "graphshard/graph.h"

namespace graphshard::props {
namespace {

namespace ref = graphshard::reference;

// Trailing shape of edge attributes: none, [k] or [k, l].
rc::Gen<std::vector<int64_t>> gen_trailing() {
  return rc::gen::oneOf(rc::gen::just(std::vector<int64_t>{}), gen_shape(1, 3), gen_shape(2, 3));
}

struct Features {
  at::Tensor x_src, x_dst, edge_attr, cond_src, cond_dst;
};
Features make_features(const GraphSpec& g, const at::Tensor& ei,
                       const std::vector<int64_t>& trailing, at::ScalarType dtype) {
  return {make_rows(g.n_src, {3}, dtype, g.seed + 1), make_rows(g.n_dst, {2}, dtype, g.seed + 2),
          make_rows(ei.size(1), trailing, dtype, g.seed + 3),
          make_rows(g.n_src, {1}, dtype, g.seed + 4), make_rows(g.n_dst, {}, dtype, g.seed + 5)};
}

// ---- sort_edge_index_by_dst / is_edge_index_dst_sorted ---------------------------------

RC_GTEST_PROP(SortEdgeIndexByDst, MatchesStableReferenceAndLeavesInputUnchanged, ()) {
  const auto g = *gen_graph_spec(2000, 20000, 0);
  const at::Tensor ei = make_edge_index(g), before = ei.clone();
  // No bound, the exact bound, or a loose one.
  const int64_t slack = *rc::gen::inRange<int64_t>(-1, 3);
  const std::optional<int64_t> max_value =
      slack < 0 ? std::nullopt : std::optional<int64_t>(g.n_dst + slack);
  const auto out = sort_edge_index_by_dst(ei, max_value);
  const auto expected = ref::sort_edge_index_by_dst(ei);
  expect_equal(out.edge_index, expected.edge_index, "sorted edge_index");
  expect_equal(out.perm, expected.perm, "perm");
  expect_equal(ei, before, "input edge_index");
}

// Above a few thousand destinations the sort takes its two-pass path (cache-sized buckets).
RC_GTEST_PROP(SortEdgeIndexByDst, TwoPassPathOnManyDestinationsMatchesStableReference, ()) {
  auto g = *gen_graph_spec(60000, 120000, 0);
  g.n_dst = std::max<int64_t>(g.n_dst, 5000 + static_cast<int64_t>(g.seed % 50000));
  const at::Tensor ei = make_edge_index(g);
  const auto out = sort_edge_index_by_dst(ei);
  const auto expected = ref::sort_edge_index_by_dst(ei);
  expect_equal(out.edge_index, expected.edge_index, "sorted edge_index");
  expect_equal(out.perm, expected.perm, "perm");
}

RC_GTEST_PROP(SortEdgeIndexByDst, SortedIsTheInputPermutedByPerm, ()) {
  const auto g = *gen_graph_spec(2000, 20000);
  const at::Tensor ei = make_edge_index(g);
  const auto out = sort_edge_index_by_dst(ei);
  expect_equal(out.edge_index, ei.index_select(1, out.perm), "edge_index[:, perm]");
  RC_ASSERT(is_edge_index_dst_sorted(out.edge_index));
}

RC_GTEST_PROP(IsEdgeIndexDstSorted, MatchesReference, ()) {
  const auto g = *gen_graph_spec(2000, 20000);
  const at::Tensor ei = make_edge_index(g);
  RC_ASSERT(is_edge_index_dst_sorted(ei) == ref::is_edge_index_dst_sorted(ei));
  if (ei.size(1) <= 1) RC_ASSERT(is_edge_index_dst_sorted(ei));
  // A non-contiguous view of the same edges gives the same answer.
  const at::Tensor wide = at::zeros({2, 2 * ei.size(1)}, ei.options());
  const at::Tensor view = wide.slice(1, 0, 2 * ei.size(1), 2);
  view.copy_(ei);
  RC_ASSERT(is_edge_index_dst_sorted(view) == ref::is_edge_index_dst_sorted(ei));
}

// ---- build_graph_partition / GraphPartition::materialise -------------------------------

RC_GTEST_PROP(BuildGraphPartition, MatchesReferenceAndTilesDestinationsAndEdges, ()) {
  const auto g = *gen_graph_spec(2000, 20000, 1);
  const int64_t parts = *rc::gen::inRange<int64_t>(1, 10);
  const at::Tensor ei = make_edge_index(g);
  const GraphPartition p = build_graph_partition(ei, parts, {g.n_src, g.n_dst});
  const auto r = ref::build_graph_partition(ei, parts, g.n_src, g.n_dst);
  RC_ASSERT(p.num_nodes == std::make_pair(g.n_src, g.n_dst));
  RC_ASSERT(p.num_edges == ei.size(1));
  RC_ASSERT(p.num_parts == parts);
  RC_ASSERT(p.dst_splits == r.dst_splits);
  RC_ASSERT(p.edge_splits == r.edge_splits);
  RC_ASSERT(total(p.dst_splits) == g.n_dst);
  RC_ASSERT(total(p.edge_splits) == ei.size(1));
  // Each edge of part i's contiguous edge range has its destination in part i's range.
  const at::Tensor dst = ei[1].to(at::kLong);
  for (int64_t i = 0; i < parts; ++i) {
    const auto [elo, ehi] = partition_range(p.edge_splits, i);
    const auto [dlo, dhi] = partition_range(p.dst_splits, i);
    if (ehi > elo) {
      const at::Tensor d = dst.slice(0, elo, ehi);
      RC_ASSERT(d.min().item<int64_t>() >= dlo);
      RC_ASSERT(d.max().item<int64_t>() < dhi);
    }
  }
}

RC_GTEST_PROP(GraphPartition, MaterialiseMatchesReferenceForEveryPart, ()) {
  const auto g = *gen_graph_spec(2000, 20000, 1);
  const int64_t parts = *rc::gen::inRange<int64_t>(1, 10);
  const bool with_cond = *rc::gen::arbitrary<bool>();
  const auto trailing = *gen_trailing();
  const at::ScalarType dtype = *rc::gen::element(at::kFloat, at::kDouble, at::kHalf);
  const at::Tensor ei = make_edge_index(g), before = ei.clone();
  const Features f = make_features(g, ei, trailing, dtype);
  RC_CLASSIFY(ei.size(1) == 0, "no edges");
  RC_CLASSIFY(ei.size(1) > 5000, "over 5000 edges");
  const GraphPartition p = build_graph_partition(ei, parts, {g.n_src, g.n_dst});
  const auto rp = ref::build_graph_partition(ei, parts, g.n_src, g.n_dst);
  std::optional<PairTensor> cond;
  std::optional<ref::RefPair> rcond;
  if (with_cond)
    cond = PairTensor{f.cond_src, f.cond_dst}, rcond = ref::RefPair{f.cond_src, f.cond_dst};
  for (int64_t i = 0; i < parts; ++i) {
    const auto m = p.materialise(i, {f.x_src, f.x_dst}, f.edge_attr, ei, cond);
    const auto r = ref::materialise(rp, i, f.x_src, f.x_dst, f.edge_attr, ei, rcond);
    const std::string part = "part " + std::to_string(i) + ": ";
    expect_equal(m.x_src, r.x_src, part + "x_src");
    expect_equal(m.x_dst, r.x_dst, part + "x_dst");
    expect_equal(m.edge_attr, r.edge_attr, part + "edge_attr");
    expect_equal(m.edge_index, r.edge_index, part + "edge_index");
    expect_equal(m.src_ids, r.src_ids, part + "src_ids");
    RC_ASSERT(m.cond.has_value() == with_cond);
    if (with_cond) {
      expect_equal(m.cond->first, r.cond->first, part + "cond_src");
      expect_equal(m.cond->second, r.cond->second, part + "cond_dst");
    }
    // Relabelled ids are in range and map back to the original edges.
    const auto [elo, ehi] = partition_range(p.edge_splits, i);
    const auto [dlo, dhi] = partition_range(p.dst_splits, i);
    if (ehi > elo) {
      const at::Tensor rel = m.edge_index.to(at::kLong);
      RC_ASSERT(rel.min().item<int64_t>() >= 0);
      RC_ASSERT(rel[0].max().item<int64_t>() < m.src_ids.numel());
      RC_ASSERT(rel[1].max().item<int64_t>() < dhi - dlo);
      const at::Tensor orig = ei.slice(1, elo, ehi).to(at::kLong);
      expect_equal(m.src_ids.to(at::kLong).index_select(0, rel[0]), orig[0], part + "src map");
      expect_equal(rel[1] + dlo, orig[1], part + "dst map");
    }
  }
  expect_equal(ei, before, "input edge_index");
}

// ---- ensure_edges_are_dst_sorted (not distributed) -------------------------------------

RC_GTEST_PROP(EnsureEdgesAreDstSorted, SortsUnsortedEdgesLikeTheReferenceAndPassesSortedOnes, ()) {
  const auto g = *gen_graph_spec(2000, 20000);
  const at::Tensor ei = make_edge_index(g), before = ei.clone();
  const at::Tensor ea = make_rows(ei.size(1), *gen_trailing(), at::kFloat, g.seed);
  const bool sharded = *rc::gen::arbitrary<bool>();
  const auto out = ensure_edges_are_dst_sorted(ea, ei, g.n_dst, sharded, nullptr, g.sorted);
  if (g.sorted) {
    RC_ASSERT(out.edge_index.is_same(ei));
    RC_ASSERT(out.edge_attr.is_same(ea));
  } else {
    const auto r = ref::sort_edges(ea, ei);
    expect_equal(out.edge_index, r.edge_index, "edge_index");
    expect_equal(out.edge_attr, r.edge_attr, "edge_attr");
  }
  expect_equal(ei, before, "input edge_index");
}

// ---- sort_edges_1hop_chunks --------------------------------------------------------------

RC_GTEST_PROP(SortEdges1hopChunks, MatchesReferenceOnBothPaths, ()) {
  const auto g = *gen_graph_spec(2000, 20000);
  const int64_t chunks = *rc::gen::inRange<int64_t>(1, 10);
  const at::Tensor ei = make_edge_index(g), before = ei.clone();
  const at::Tensor ea = make_rows(ei.size(1), *gen_trailing(), at::kDouble, g.seed);
  // The sorted path may only be taken for sorted edges; unsorted is always allowed.
  const bool claim_sorted = g.sorted && *rc::gen::arbitrary<bool>();
  const EdgeChunks out =
      g.plain ? sort_edges_1hop_chunks(g.n_dst, ea, ei, chunks, claim_sorted)
              : sort_edges_1hop_chunks({g.n_src, g.n_dst}, ea, ei, chunks, claim_sorted);
  const auto r = ref::sort_edges_1hop_chunks(g.n_dst, ea, ei, chunks);
  RC_ASSERT(out.edge_index.size() == static_cast<size_t>(chunks));
  RC_ASSERT(out.edge_attr.size() == static_cast<size_t>(chunks));
  for (int64_t i = 0; i < chunks; ++i) {
    expect_equal(out.edge_index[i], r.edge_index[i], "chunk " + std::to_string(i) + " edge_index");
    expect_equal(out.edge_attr[i], r.edge_attr[i], "chunk " + std::to_string(i) + " edge_attr");
  }
  expect_equal(ei, before, "input edge_index");
}

// ---- drop_unconnected_src_nodes ----------------------------------------------------------

RC_GTEST_PROP(DropUnconnectedSrcNodes, MatchesReferenceAndMapsBack, ()) {
  const auto g = *gen_graph_spec(2000, 20000);
  const at::Tensor ei = make_edge_index(g), before = ei.clone();
  const at::Tensor x = make_rows(g.n_src, {2}, at::kFloat, g.seed);
  const auto out = drop_unconnected_src_nodes(x, ei, {g.n_src, g.n_dst});
  const auto r = ref::drop_unconnected_src_nodes(x, ei);
  expect_equal(out.x_src, r.x_src, "x_src");
  expect_equal(out.edge_index, r.edge_index, "edge_index");
  expect_equal(out.kept_ids, r.kept_ids, "kept_ids");
  if (ei.size(1) > 0) {
    expect_equal(out.kept_ids.index_select(0, out.edge_index[0].to(at::kLong)), ei[0],
                 "kept_ids[relabelled sources]");
  }
  expect_equal(ei, before, "input edge_index");
}

// ---- Determinism: 1 and 2 intra-op threads ----------------------------------------------
// Graphs large enough (up to 400k edges, 200k nodes) that the kernels cut them into several
// chunks when two threads are available.

std::vector<at::Tensor> run_all(const GraphSpec& g, int64_t parts) {
  const at::Tensor ei = make_edge_index(g);
  const at::Tensor ea = make_rows(ei.size(1), {}, at::kFloat, g.seed);
  const at::Tensor x_src = make_rows(g.n_src, {}, at::kFloat, g.seed + 1);
  const at::Tensor x_dst = make_rows(g.n_dst, {}, at::kFloat, g.seed + 2);
  std::vector<at::Tensor> out;
  const auto sorted = sort_edge_index_by_dst(ei, g.n_dst);
  out.push_back(sorted.edge_index);
  out.push_back(sorted.perm);
  out.push_back(at::scalar_tensor(static_cast<int64_t>(is_edge_index_dst_sorted(ei))));
  const GraphPartition p = build_graph_partition(sorted.edge_index, parts, {g.n_src, g.n_dst});
  out.push_back(at::tensor(p.edge_splits));
  for (int64_t i = 0; i < parts; ++i) {
    const auto m =
        p.materialise(i, {x_src, x_dst}, ea.index_select(0, sorted.perm), sorted.edge_index);
    out.push_back(m.edge_index);
    out.push_back(m.src_ids);
  }
  const auto chunks = sort_edges_1hop_chunks({g.n_src, g.n_dst}, ea, ei, parts, false);
  out.insert(out.end(), chunks.edge_index.begin(), chunks.edge_index.end());
  const auto dropped = drop_unconnected_src_nodes(x_src, ei, {g.n_src, g.n_dst});
  out.push_back(dropped.edge_index);
  out.push_back(dropped.kept_ids);
  return out;
}

struct ThreadGuard {
  int saved = at::get_num_threads();
  ~ThreadGuard() { at::set_num_threads(saved); }
};

RC_GTEST_PROP(SortEdgeIndexByDst, EveryGraphFunctionIsIdenticalForOneAndTwoThreads, ()) {
  const auto g = *gen_graph_spec(200000, 400000);
  const int64_t parts = *rc::gen::inRange<int64_t>(1, 10);
  ThreadGuard guard;
  at::set_num_threads(1);
  const auto one = run_all(g, parts);
  at::set_num_threads(2);
  const auto two = run_all(g, parts);
  RC_ASSERT(one.size() == two.size());
  for (size_t i = 0; i < one.size(); ++i)
    expect_equal(two[i], one[i], "output " + std::to_string(i));
}

}  // namespace
}  // namespace graphshard::props
