// Bad input (SPEC §5): every precondition of the graph functions, violated on purpose, raises
// c10::ValueError naming the function and the argument (on every rank, for the distributed
// functions), and leaves the inputs unchanged.
#include <algorithm>
#include <functional>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "generators.h"
#include "graph_generators.h"
#include "graphshard/graph.h"
#include "sim.h"

namespace graphshard::props {
namespace {

struct DebugChecks {
  bool saved = debug_checks();
  explicit DebugChecks(bool on) { set_debug_checks(on); }
  ~DebugChecks() { set_debug_checks(saved); }
};

// Runs f, which must raise c10::ValueError whose message names fn and arg.
void expect_value_error(const std::function<void()>& f, const std::string& fn,
                        const std::string& arg, const std::string& what) {
  try {
    f();
  } catch (const c10::ValueError& e) {
    const std::string msg = e.what();
    if (msg.find("graphshard::" + fn + ": ") == std::string::npos ||
        msg.find(arg) == std::string::npos || msg.find("(rank ") == std::string::npos) {
      throw std::runtime_error(what + ": the message does not name graphshard::" + fn + " and " +
                               arg + ": " + msg);
    }
    return;
  } catch (const std::exception& e) {
    throw std::runtime_error(what + ": expected c10::ValueError, got: " + e.what());
  }
  throw std::runtime_error(what + ": no error raised");
}

// A copy of ei with entry (row, col) set to value.
at::Tensor with_entry(const at::Tensor& ei, int64_t row, int64_t col, int64_t value) {
  at::Tensor bad = ei.clone();
  bad[row][col] = value;
  return bad;
}

// A sorted graph with at least one edge and at least two destinations.
rc::Gen<GraphSpec> gen_nonempty_sorted() {
  return rc::gen::suchThat(gen_graph_spec(300, 2000, 1), [](const GraphSpec& g) {
    return g.n_src > 0 && g.n_dst > 1 && g.num_edges > 0;
  });
}

RC_GTEST_PROP(SortEdgeIndexByDst, RejectsBadEdgeIndexAndMaxValue, ()) {
  const auto g = *gen_nonempty_sorted();
  const at::Tensor ei = make_edge_index(g), before = ei.clone();
  const int64_t e = ei.size(1);
  const char* fn = "sort_edge_index_by_dst";
  expect_value_error(
      [&] {
        sort_edge_index_by_dst(ei.repeat({2, 1}));
      },
      fn, "edge_index", "[4, E]");
  expect_value_error([&] { sort_edge_index_by_dst(ei.to(at::kFloat)); }, fn, "edge_index", "float");
  expect_value_error([&] { sort_edge_index_by_dst(ei[0]); }, fn, "edge_index", "1-D");
  const int64_t max_dst = ei[1].max().item<int64_t>();
  expect_value_error([&] { sort_edge_index_by_dst(ei, max_dst); }, fn, "edge_index",
                     "ids at max_value");
  expect_value_error([&] { sort_edge_index_by_dst(with_entry(ei, 1, e / 2, -1)); }, fn,
                     "edge_index", "negative id");
  expect_value_error([&] { sort_edge_index_by_dst(ei, -1); }, fn, "max_value", "negative bound");
  expect_value_error([&] { is_edge_index_dst_sorted(ei.unsqueeze(0)); }, "is_edge_index_dst_sorted",
                     "edge_index", "[1, 2, E]");
  expect_equal(ei, before, "input edge_index");
}

RC_GTEST_PROP(BuildGraphPartition, RejectsBadArgumentsAndUnsortedEdgesUnderDebugChecks, ()) {
  const auto g = *gen_nonempty_sorted();
  const at::Tensor ei = make_edge_index(g), before = ei.clone();
  const int64_t e = ei.size(1);
  const char* fn = "build_graph_partition";
  const std::pair<int64_t, int64_t> nodes{g.n_src, g.n_dst};
  expect_value_error([&] { build_graph_partition(ei, 0, nodes); }, fn, "num_parts", "0 parts");
  expect_value_error(
      [&] {
        build_graph_partition(ei, 2, {g.n_src, -1});
      },
      fn, "num_nodes", "negative n_dst");
  expect_value_error([&] { build_graph_partition(with_entry(ei, 1, e - 1, g.n_dst), 2, nodes); },
                     fn, "edge_index", "destination = n_dst");
  expect_value_error([&] { build_graph_partition(ei.to(at::kDouble), 2, nodes); }, fn, "edge_index",
                     "float edge index");
  if (e >= 2 && ei[1][0].item<int64_t>() != ei[1][e - 1].item<int64_t>()) {
    const at::Tensor unsorted = ei.flip(1);
    DebugChecks on(true);
    expect_value_error([&] { build_graph_partition(unsorted, 2, nodes); }, fn, "edge_index",
                       "unsorted under debug checks");
    expect_value_error([&] { sort_edges_1hop_chunks(nodes, at::zeros({e}), unsorted, 2); },
                       "sort_edges_1hop_chunks", "edge_index", "unsorted under debug checks");
    expect_value_error(
        [&] { ensure_edges_are_dst_sorted(at::zeros({e}), unsorted, g.n_dst, false, nullptr); },
        "ensure_edges_are_dst_sorted", "edge_index", "unsorted under debug checks");
  }
  expect_equal(ei, before, "input edge_index");
}

RC_GTEST_PROP(GraphPartition, MaterialiseRejectsBadArguments, ()) {
  const auto g = *gen_nonempty_sorted();
  const int64_t parts = *rc::gen::inRange<int64_t>(1, 10);
  const at::Tensor ei = make_edge_index(g), before = ei.clone();
  const int64_t e = ei.size(1);
  const at::Tensor xs = at::zeros({g.n_src, 2}), xd = at::zeros({g.n_dst}), ea = at::zeros({e, 3});
  const GraphPartition p = build_graph_partition(ei, parts, {g.n_src, g.n_dst});
  const char* fn = "GraphPartition::materialise";
  expect_value_error(
      [&] {
        p.materialise(parts, {xs, xd}, ea, ei);
      },
      fn, "partition_id", "= parts");
  expect_value_error([&] { p.materialise(-1, {xs, xd}, ea, ei); }, fn, "partition_id", "-1");
  expect_value_error(
      [&] {
        p.materialise(0, {xs.narrow(0, 1, g.n_src - 1), xd}, ea, ei);
      },
      fn, "x.first", "x_src rows");
  expect_value_error(
      [&] {
        p.materialise(0, {xs, at::zeros({g.n_dst + 1})}, ea, ei);
      },
      fn, "x.second", "x_dst rows");
  expect_value_error(
      [&] {
        p.materialise(0, {xs, xd}, ea.narrow(0, 1, e - 1), ei);
      },
      fn, "edge_attr", "edge_attr rows");
  expect_value_error(
      [&] {
        p.materialise(0, {xs, xd}, ea, ei.narrow(1, 1, e - 1));
      },
      fn, "edge_index", "fewer edges");
  expect_value_error(
      [&] {
        p.materialise(0, {xs, xd}, ea, ei, PairTensor{at::zeros({g.n_src + 2}), xd});
      },
      fn, "cond.first", "cond_src rows");
  // A source id out of range in every part: each part that holds edges must notice.
  const at::Tensor bad = ei.clone();
  bad[0].fill_(g.n_src);
  for (int64_t i = 0; i < parts; ++i) {
    if (p.edge_splits[i] == 0) continue;
    expect_value_error(
        [&] {
          p.materialise(i, {xs, xd}, ea, bad);
        },
        fn, "edge_index", "source id = n_src in part " + std::to_string(i));
  }
  expect_equal(ei, before, "input edge_index");
}

RC_GTEST_PROP(SortEdges1hopChunks, RejectsBadArguments, ()) {
  const auto g = *gen_nonempty_sorted();
  const at::Tensor ei = make_edge_index(g), before = ei.clone();
  const int64_t e = ei.size(1);
  const at::Tensor ea = at::zeros({e});
  const bool sorted = *rc::gen::arbitrary<bool>();
  const std::pair<int64_t, int64_t> nodes{g.n_src, g.n_dst};
  const char* fn = "sort_edges_1hop_chunks";
  expect_value_error([&] { sort_edges_1hop_chunks(nodes, ea, ei, 0, sorted); }, fn, "num_chunks",
                     "0 chunks");
  expect_value_error([&] { sort_edges_1hop_chunks(nodes, ea.narrow(0, 0, e - 1), ei, 2, sorted); },
                     fn, "edge_attr", "edge_attr rows");
  expect_value_error(
      [&] { sort_edges_1hop_chunks(nodes, ea, with_entry(ei, 1, e - 1, g.n_dst), 2, sorted); }, fn,
      "edge_index", "destination = n_dst");
  expect_value_error(
      [&] { sort_edges_1hop_chunks(nodes, ea, with_entry(ei, 0, 0, g.n_src), 2, sorted); }, fn,
      "edge_index", "source = n_src");
  expect_value_error([&] { sort_edges_1hop_chunks(-1, ea, ei, 2, sorted); }, fn, "num_nodes",
                     "negative node count");
  expect_equal(ei, before, "input edge_index");
}

RC_GTEST_PROP(DropUnconnectedSrcNodes, RejectsBadArguments, ()) {
  const auto g = *gen_nonempty_sorted();
  const at::Tensor ei = make_edge_index(g), before = ei.clone();
  const int64_t e = ei.size(1);
  const at::Tensor xs = at::zeros({g.n_src, 2});
  const std::pair<int64_t, int64_t> nodes{g.n_src, g.n_dst};
  const char* fn = "drop_unconnected_src_nodes";
  expect_value_error([&] { drop_unconnected_src_nodes(at::zeros({g.n_src + 1}), ei, nodes); }, fn,
                     "x_src", "x_src rows");
  expect_value_error(
      [&] { drop_unconnected_src_nodes(xs, with_entry(ei, 0, e / 2, g.n_src), nodes); }, fn,
      "edge_index", "source = n_src");
  expect_value_error([&] { drop_unconnected_src_nodes(xs, with_entry(ei, 0, e / 2, -3), nodes); },
                     fn, "edge_index", "negative source");
  expect_value_error([&] { drop_unconnected_src_nodes(xs, with_entry(ei, 1, 0, g.n_dst), nodes); },
                     fn, "edge_index", "destination = n_dst");
  expect_value_error([&] { drop_unconnected_src_nodes(xs, ei.to(at::kShort), nodes); }, fn,
                     "edge_index", "int16 edge index");
  expect_equal(ei, before, "input edge_index");
}

RC_GTEST_PROP(EnsureEdgesAreDstSorted, RejectsBadArguments, ()) {
  const auto g = *gen_nonempty_sorted();
  const at::Tensor ei = make_edge_index(g);
  const int64_t e = ei.size(1);
  const char* fn = "ensure_edges_are_dst_sorted";
  expect_value_error(
      [&] { ensure_edges_are_dst_sorted(at::zeros({e + 1}), ei, g.n_dst, false, nullptr, false); },
      fn, "edge_attr", "edge_attr rows");
  expect_value_error(
      [&] {
        const int64_t max_dst = ei[1].max().item<int64_t>();
        ensure_edges_are_dst_sorted(at::zeros({e}), ei, max_dst, false, nullptr, false);
      },
      fn, "edge_index", "destination >= num_dst");
  expect_value_error(
      [&] { ensure_edges_are_dst_sorted(at::zeros({e}), ei, -1, false, nullptr, false); }, fn,
      "num_dst", "negative num_dst");
}

// ---- Distributed functions: every rank raises ------------------------------------------

// Runs body on W simulated ranks; every rank must raise c10::ValueError naming fn and arg.
void expect_value_error_on_every_rank(int w, const std::function<void(const CommPtr&)>& body,
                                      const std::string& fn, const std::string& arg,
                                      const std::string& what) {
  const auto world = sim::SimWorld::create(w, std::chrono::milliseconds(20000));
  const auto outcomes = sim::run_ranks_collect(
      world, [&](const CommPtr& comm) { expect_value_error([&] { body(comm); }, fn, arg, what); });
  for (size_t r = 0; r < outcomes.size(); ++r) {
    if (!outcomes[r].ok) {
      throw std::runtime_error(what + " (W=" + std::to_string(w) + "), rank " + std::to_string(r) +
                               ": " + outcomes[r].error);
    }
  }
}

at::Tensor piece(const at::Tensor& full, int64_t dim, const std::vector<int64_t>& sizes, int r) {
  const auto [lo, hi] = partition_range(sizes, r);
  return full.narrow(dim, lo, hi - lo);
}

RC_GTEST_PROP(ShardEdges1hop, EveryRankRejectsBadArguments, ()) {
  const auto g = *gen_nonempty_sorted();
  const int w = *rc::gen::inRange(2, 5);
  const bool sorted = *rc::gen::arbitrary<bool>();
  const at::Tensor ei = make_edge_index(g), before = ei.clone();
  const int64_t e = ei.size(1);
  const at::Tensor ea = at::zeros({e, 2});
  const char* fn = "shard_edges_1hop";
  const at::Tensor bad_src = with_entry(ei, 0, e - 1, g.n_src);
  expect_value_error_on_every_rank(
      w, [&](const CommPtr& c) { shard_edges_1hop(ea, bad_src, g.n_src, g.n_dst, c, sorted); }, fn,
      "edge_index", "source = n_src");
  const at::Tensor bad_dst = with_entry(ei, 1, e - 1, g.n_dst);
  expect_value_error_on_every_rank(
      w, [&](const CommPtr& c) { shard_edges_1hop(ea, bad_dst, g.n_src, g.n_dst, c, sorted); }, fn,
      "edge_index", "destination = n_dst");
  expect_value_error_on_every_rank(
      w,
      [&](const CommPtr& c) { shard_edges_1hop(ea.narrow(0, 1, e - 1), ei, g.n_src, g.n_dst, c); },
      fn, "edge_attr", "edge_attr rows");
  expect_value_error_on_every_rank(
      w, [&](const CommPtr& c) { shard_edges_1hop(ea, ei, g.n_src, -1, c); }, fn, "dst_size",
      "negative dst_size");
  expect_equal(ei, before, "input edge_index");
  expect_equal(bad_src, with_entry(ei, 0, e - 1, g.n_src), "input edge_index (bad)");
}

RC_GTEST_PROP(ShardGraphToLocal, EveryRankRejectsBadArguments, ()) {
  const auto g = *gen_nonempty_sorted();
  const int w = *rc::gen::inRange(2, 5);
  const at::Tensor ei = make_edge_index(g), before = ei.clone();
  const int64_t e = ei.size(1);
  const at::Tensor xs = at::zeros({g.n_src, 2}), xd = at::zeros({g.n_dst, 1});
  const at::Tensor ea = at::zeros({e, 2});
  const std::pair<int64_t, int64_t> nodes{g.n_src, g.n_dst};
  const GraphPartition p = build_graph_partition(ei, w, nodes);
  const BipartiteGraphShardInfo none;
  const char* fn = "shard_graph_to_local";
  const GraphPartition wrong_parts = build_graph_partition(ei, w + 1, nodes);
  expect_value_error_on_every_rank(
      w,
      [&](const CommPtr& c) {
        shard_graph_to_local(wrong_parts, {xs, xd}, ea, ei, none, c);
      },
      fn, "partition.num_parts", "num_parts != W");
  expect_value_error_on_every_rank(
      w,
      [&](const CommPtr& c) {
        shard_graph_to_local(p, {xs.narrow(0, 1, g.n_src - 1), xd}, ea, ei, none, c);
      },
      fn, "x.first", "x_src rows");
  expect_value_error_on_every_rank(
      w,
      [&](const CommPtr& c) {
        shard_graph_to_local(p, {xs, xd.narrow(0, 1, g.n_dst - 1)}, ea, ei, none, c);
      },
      fn, "x.second", "x_dst rows");
  expect_value_error_on_every_rank(
      w,
      [&](const CommPtr& c) {
        shard_graph_to_local(p, {xs, xd}, ea.narrow(0, 1, e - 1), ei, none, c);
      },
      fn, "edge_attr", "edge_attr rows");
  const at::Tensor bad_src = with_entry(ei, 0, e / 2, g.n_src);
  expect_value_error_on_every_rank(
      w,
      [&](const CommPtr& c) {
        shard_graph_to_local(p, {xs, xd}, ea, bad_src, none, c);
      },
      fn, "edge_index", "source = n_src");
  // Shard sizes that disagree with the partition.
  std::vector<int64_t> other_dst = p.dst_splits;
  other_dst[0] += 1;
  other_dst[1] -= 1;
  const BipartiteGraphShardInfo bad_dst_info(std::nullopt, other_dst, std::nullopt);
  expect_value_error_on_every_rank(
      w,
      [&](const CommPtr& c) {
        shard_graph_to_local(p, {xs, piece(xd, 0, other_dst, c->rank())}, ea, ei, bad_dst_info, c);
      },
      fn, "shard_info.dst_nodes", "dst sizes != dst_splits");
  std::vector<int64_t> other_edges = p.edge_splits;  // one edge moved to the next rank
  const auto from =
      std::find_if(other_edges.begin(), other_edges.end(), [](int64_t s) { return s > 0; });
  const int64_t q = from - other_edges.begin();
  other_edges[q] -= 1;
  other_edges[(q + 1) % w] += 1;
  const BipartiteGraphShardInfo bad_edge_info(std::nullopt, std::nullopt, other_edges);
  expect_value_error_on_every_rank(
      w,
      [&](const CommPtr& c) {
        shard_graph_to_local(p, {xs, xd}, piece(ea, 0, other_edges, c->rank()),
                             piece(ei, 1, other_edges, c->rank()), bad_edge_info, c);
      },
      fn, "shard_info.edges", "edge sizes != edge_splits");
  const BipartiteGraphShardInfo bad_src_info(std::vector<int64_t>(w + 1, 0), std::nullopt,
                                             std::nullopt);
  expect_value_error_on_every_rank(
      w,
      [&](const CommPtr& c) {
        shard_graph_to_local(p, {xs, xd}, ea, ei, bad_src_info, c);
      },
      fn, "shard_info.src_nodes", "W + 1 src sizes");
  expect_equal(ei, before, "input edge_index");
}

RC_GTEST_PROP(BuildGraphPartitionFromShardInfo, EveryRankRejectsBadArguments, ()) {
  const auto g = *gen_nonempty_sorted();
  const int w = *rc::gen::inRange(2, 5);
  const at::Tensor ei = make_edge_index(g);
  const at::Tensor xs = at::zeros({g.n_src, 2}), xd = at::zeros({g.n_dst, 1});
  const char* fn = "build_graph_partition_from_shard_info";
  const auto sizes = std::vector<int64_t>(w, 1);
  const BipartiteGraphShardInfo src_info(sizes, std::nullopt, std::nullopt);
  expect_value_error_on_every_rank(
      w,
      [&](const CommPtr& c) {
        build_graph_partition_from_shard_info(ei, {at::zeros({2, 2}), xd}, src_info, c);
      },
      fn, "x.first", "x_src rows != src_nodes[r]");
  const BipartiteGraphShardInfo short_info(std::vector<int64_t>(w - 1, 1), std::nullopt,
                                           std::nullopt);
  expect_value_error_on_every_rank(
      w,
      [&](const CommPtr& c) {
        build_graph_partition_from_shard_info(ei, {xs, xd}, short_info, c);
      },
      fn, "shard_info.src_nodes", "W - 1 sizes");
  const BipartiteGraphShardInfo edge_info(std::nullopt, std::nullopt,
                                          std::vector<int64_t>(w, ei.size(1) + 1));
  expect_value_error_on_every_rank(
      w,
      [&](const CommPtr& c) {
        build_graph_partition_from_shard_info(ei, {xs, xd}, edge_info, c);
      },
      fn, "edge_index", "edges[r] != local edge count");
}

RC_GTEST_PROP(EnsureEdgesAreDstSorted, EveryRankRefusesToSortADistributedEdgeShard, ()) {
  const auto g = *gen_nonempty_sorted();
  const int w = *rc::gen::inRange(2, 5);
  const at::Tensor ei = make_edge_index(g);
  const at::Tensor ea = at::zeros({ei.size(1)});
  expect_value_error_on_every_rank(
      w, [&](const CommPtr& c) { ensure_edges_are_dst_sorted(ea, ei, g.n_dst, true, c, false); },
      "ensure_edges_are_dst_sorted", "edges_are_sharded", "sharded unsorted edges");
}

}  // namespace
}  // namespace graphshard::props
