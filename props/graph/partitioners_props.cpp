// partition_graph (graphshard/partitioners.h), every scheme, on random plain and bipartite graphs
// (duplicates, self-loops, hubs, isolated nodes, empty graphs, int32 and int64 ids, sorted or
// not; coordinates with ties and zero vectors):
//   - the node and edge permutations are permutations, the inverses invert them, the parts tile
//     the nodes and the edges, and the renumbered edge index is the input relabelled and sorted
//     stably by destination, each part's edges in its destination range;
//   - a layer run part by part on the renumbered graph (GraphPartition::materialise) and
//     un-permuted equals the layer on the input graph, bitwise;
//   - the same results for 1 and 2 intra-op threads;
//   - contiguous is today's partition; edge_balanced's parts are within one maximum in-degree of
//     the mean edge count;
//   - bad arguments raise c10::ValueError naming partition_graph and the argument.
#include <cmath>
#include <utility>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "generators.h"
#include "graph_generators.h"
#include "graphshard/partitioners.h"

namespace graphshard::props {
namespace {

struct Case {
  GraphSpec g;
  PartitionScheme scheme = PartitionScheme::kContiguous;
  int64_t parts = 1;
};

Case draw_case(int sorted = -1) {
  Case c;
  c.g = *gen_graph_spec(500, 4000, sorted);
  c.scheme = *rc::gen::elementOf(all_partition_schemes());
  c.parts = *rc::gen::inRange<int64_t>(1, 12);
  RC_TAG(to_string(c.scheme));
  return c;
}

PartitionOptions options_of(const Case& c) {
  PartitionOptions o;
  o.scheme = c.scheme;
  o.plain = c.g.plain;
  // Small integers: ties in latitude, longitude and Hilbert key, and zero vectors.
  o.dst_coords = make_rows(c.g.n_dst, {3}, at::kDouble, c.g.seed + 9);
  o.seed = c.g.seed;
  return o;
}

RenumberedGraph run(const Case& c, const at::Tensor& ei) {
  return partition_graph(ei, {c.g.n_src, c.g.n_dst}, c.parts, options_of(c));
}

// out[d] = x_dst[d] + sum over d's edges of x_src[s] * edge_attr[e]; exact on small integers.
at::Tensor layer(const at::Tensor& xs, const at::Tensor& xd, const at::Tensor& ea,
                 const at::Tensor& ei) {
  const at::Tensor e = ei.to(at::kLong);
  return xd + at::zeros_like(xd).index_add_(0, e[1], xs.index_select(0, e[0]) * ea);
}

at::Tensor arange(int64_t n) {
  return at::arange(n, at::kLong);
}

void expect_permutation(const at::Tensor& perm, const at::Tensor& inverse, int64_t n,
                        const std::string& what) {
  RC_ASSERT(perm.numel() == n);
  RC_ASSERT(inverse.numel() == n);
  expect_equal(std::get<0>(at::sort(perm)), arange(n), what + " sorted");
  expect_equal(inverse.index_select(0, perm), arange(n), what + ": inverse[perm]");
}

void expect_tiles(const std::vector<int64_t>& sizes, int64_t parts, int64_t n) {
  RC_ASSERT(static_cast<int64_t>(sizes.size()) == parts);
  int64_t sum = 0;
  for (const int64_t s : sizes) {
    RC_ASSERT(s >= 0);
    sum += s;
  }
  RC_ASSERT(sum == n);
}

RC_GTEST_PROP(PartitionGraph, PermutationsTileTheNodesAndEdges, ()) {
  const Case c = draw_case();
  const at::Tensor ei = make_edge_index(c.g), before = ei.clone();
  const RenumberedGraph r = run(c, ei);
  expect_equal(ei, before, "input edge_index");
  const int64_t e = ei.size(1);
  RC_ASSERT(r.scheme == c.scheme);
  expect_permutation(r.src_perm, r.src_inverse, c.g.n_src, "src_perm");
  expect_permutation(r.dst_perm, r.dst_inverse, c.g.n_dst, "dst_perm");
  expect_equal(std::get<0>(at::sort(r.edge_perm)), arange(e), "edge_perm sorted");
  RC_ASSERT(r.partition.num_nodes == std::make_pair(c.g.n_src, c.g.n_dst));
  RC_ASSERT(r.partition.num_edges == e);
  RC_ASSERT(r.partition.num_parts == c.parts);
  expect_tiles(r.partition.dst_splits, c.parts, c.g.n_dst);
  expect_tiles(r.partition.edge_splits, c.parts, e);
  expect_tiles(r.src_splits, c.parts, c.g.n_src);
  // The input's edges, relabelled, in edge_perm's order.
  RC_ASSERT(r.edge_index.scalar_type() == ei.scalar_type());
  const at::Tensor taken = ei.to(at::kLong).index_select(1, r.edge_perm);
  expect_equal(r.edge_index.to(at::kLong),
               at::stack({r.src_inverse.index_select(0, taken[0]),
                          r.dst_inverse.index_select(0, taken[1])}),
               "renumbered edge_index");
  if (e > 1) {
    const at::Tensor dst = r.edge_index[1].to(at::kLong);
    const at::Tensor next = dst.narrow(0, 1, e - 1), prev = dst.narrow(0, 0, e - 1);
    RC_ASSERT((next >= prev).all().item<bool>());
    const at::Tensor p = r.edge_perm;
    const at::Tensor same = next == prev;
    RC_ASSERT((p.narrow(0, 1, e - 1) > p.narrow(0, 0, e - 1)).masked_select(same).all().item<bool>());
  }
  const at::Tensor dst = r.edge_index[1].to(at::kLong);
  for (int64_t q = 0; q < c.parts; ++q) {
    const auto [lo, hi] = partition_range(r.partition.dst_splits, q);
    RC_ASSERT(((dst >= lo) & (dst < hi)).sum().item<int64_t>() == r.partition.edge_splits[q]);
  }
  if (c.g.plain) {
    expect_equal(r.src_perm, r.dst_perm, "plain graph: src_perm");
    RC_ASSERT(r.src_splits == r.partition.dst_splits);
  }
}

RC_GTEST_PROP(PartitionGraph, RenumberedLayerRunPartByPartEqualsTheOriginal, ()) {
  const Case c = draw_case();
  const at::Tensor ei = make_edge_index(c.g);
  const RenumberedGraph r = run(c, ei);
  const at::Tensor xs = make_rows(c.g.n_src, {2}, at::kDouble, c.g.seed + 1);
  const at::Tensor xd = make_rows(c.g.n_dst, {2}, at::kDouble, c.g.seed + 2);
  const at::Tensor ea = make_rows(ei.size(1), {1}, at::kDouble, c.g.seed + 3);
  const at::Tensor xs_new = xs.index_select(0, r.src_perm), xd_new = xd.index_select(0, r.dst_perm);
  const at::Tensor ea_new = ea.index_select(0, r.edge_perm);
  std::vector<at::Tensor> pieces;
  for (int64_t q = 0; q < c.parts; ++q) {
    const auto m = r.partition.materialise(q, {xs_new, xd_new}, ea_new, r.edge_index);
    pieces.push_back(layer(m.x_src, m.x_dst, m.edge_attr, m.edge_index));
  }
  expect_equal(at::cat(pieces, 0).index_select(0, r.dst_inverse), layer(xs, xd, ea, ei),
               "un-permuted output");
}

struct ThreadGuard {
  int saved = at::get_num_threads();
  ~ThreadGuard() { at::set_num_threads(saved); }
};

RC_GTEST_PROP(PartitionGraph, IdenticalForOneAndTwoThreads, ()) {
  const Case c = draw_case();
  const at::Tensor ei = make_edge_index(c.g);
  ThreadGuard guard;
  at::set_num_threads(1);
  const RenumberedGraph one = run(c, ei);
  at::set_num_threads(2);
  const RenumberedGraph two = run(c, ei);
  RC_ASSERT(one.partition == two.partition);
  RC_ASSERT(one.src_splits == two.src_splits);
  expect_equal(two.edge_index, one.edge_index, "edge_index");
  expect_equal(two.edge_perm, one.edge_perm, "edge_perm");
  expect_equal(two.src_perm, one.src_perm, "src_perm");
  expect_equal(two.dst_perm, one.dst_perm, "dst_perm");
}

RC_GTEST_PROP(PartitionGraph, ContiguousIsTodaysPartition, ()) {
  Case c = draw_case(1);
  c.scheme = PartitionScheme::kContiguous;
  const at::Tensor ei = make_edge_index(c.g);
  const RenumberedGraph r = run(c, ei);
  expect_equal(r.src_perm, arange(c.g.n_src), "src_perm");
  expect_equal(r.dst_perm, arange(c.g.n_dst), "dst_perm");
  expect_equal(r.edge_perm, arange(ei.size(1)), "edge_perm");
  expect_equal(r.edge_index, ei, "edge_index");
  RC_ASSERT(r.partition == build_graph_partition(ei, c.parts, {c.g.n_src, c.g.n_dst}));
  RC_ASSERT(r.src_splits == balanced_sizes(c.g.n_src, c.parts));
}

RC_GTEST_PROP(PartitionGraph, EdgeBalancedPartsAreWithinOneMaxDegreeOfTheMean, ()) {
  Case c = draw_case();
  c.scheme = PartitionScheme::kEdgeBalanced;
  const at::Tensor ei = make_edge_index(c.g);
  const RenumberedGraph r = run(c, ei);
  const int64_t e = ei.size(1);
  const int64_t max_degree =
      e == 0 ? 0 : at::bincount(ei[1].to(at::kLong), {}, c.g.n_dst).max().item<int64_t>();
  // Each cut is the closest to its ideal position: off by at most half a node's edges.
  for (const int64_t s : r.partition.edge_splits) RC_ASSERT(c.parts * s <= e + c.parts * max_degree);
  expect_equal(r.dst_perm, arange(c.g.n_dst), "dst_perm (contiguous ranges)");
}

template <typename F>
void expect_value_error(F&& f, const std::string& fn, const std::string& arg) {
  try {
    f();
    ADD_FAILURE() << "no error for " << arg;
  } catch (const c10::ValueError& err) {
    const std::string m = err.what();
    EXPECT_NE(m.find("graphshard::" + fn + ": " + arg), std::string::npos) << m;
  }
}

TEST(PartitionGraph, BadArgumentsRaiseValueErrorNamingTheArgument) {
  const at::Tensor ei = at::stack({arange(3), (arange(3) + 1).remainder(3)});  // a 3-cycle
  const std::string fn = "partition_graph";
  expect_value_error([&] { partition_graph(ei, {3, 3}, 0); }, fn, "num_parts");
  expect_value_error([&] { partition_graph(ei, {3, -1}, 2); }, fn, "num_nodes.second");
  expect_value_error([&] { partition_graph(ei, {2, 3}, 2); }, fn, "edge_index");
  expect_value_error([&] { partition_graph(ei.to(at::kFloat), {3, 3}, 2); }, fn, "edge_index");
  PartitionOptions plain;
  plain.plain = true;
  expect_value_error([&] { partition_graph(ei, {3, 4}, 2, plain); }, fn, "options.plain");
  for (const auto scheme : {PartitionScheme::kHilbert, PartitionScheme::kLatLonBoxes}) {
    PartitionOptions o;
    o.scheme = scheme;
    expect_value_error([&] { partition_graph(ei, {3, 3}, 2, o); }, fn, "options.dst_coords");
    o.dst_coords = at::zeros({3, 2}, at::kDouble);
    expect_value_error([&] { partition_graph(ei, {3, 3}, 2, o); }, fn, "options.dst_coords");
    o.dst_coords = at::zeros({3, 3}, at::kLong);
    expect_value_error([&] { partition_graph(ei, {3, 3}, 2, o); }, fn, "options.dst_coords");
    o.dst_coords = at::full({3, 3}, std::nan(""), at::kDouble);
    expect_value_error([&] { partition_graph(ei, {3, 3}, 2, o); }, fn, "options.dst_coords");
  }
  expect_value_error([] { partition_scheme_from_string("kmeans"); }, "partition_scheme_from_string",
                     "name");
  for (const auto s : all_partition_schemes()) {
    EXPECT_EQ(partition_scheme_from_string(to_string(s)), s);
  }
}

}  // namespace
}  // namespace graphshard::props
