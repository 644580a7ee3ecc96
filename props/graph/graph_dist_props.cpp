// The distributed graph functions on W simulated ranks (and replayed over Gloo) equal the
// naive whole-graph reference on every rank: build_graph_partition_from_shard_info,
// shard_edges_1hop (sorted and unsorted paths), shard_graph_to_local (every combination of
// src / dst / edges already sharded or not, with and without cond).
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "generators.h"
#include "graph.h"  // reference/graph.h
#include "graph_generators.h"
#include "graphshard/graph.h"
#include "harness.h"

namespace graphshard::props {
namespace {

namespace ref = graphshard::reference;

at::Tensor piece(const at::Tensor& full, int64_t dim, const std::vector<int64_t>& sizes, int r) {
  const auto [lo, hi] = partition_range(sizes, r);
  return full.narrow(dim, lo, hi - lo);
}

struct DistCase {
  GraphSpec g;
  bool src_sharded = false, dst_sharded = false, edges_sharded = false, with_cond = false;
  bool balanced_src = true;
  bool halo = false;  // shard_graph_to_local with SrcExchange::kHalo
};
std::ostream& operator<<(std::ostream& os, const DistCase& c) {
  return os << c.g << " src_sharded=" << c.src_sharded << " dst_sharded=" << c.dst_sharded
            << " edges_sharded=" << c.edges_sharded << " cond=" << c.with_cond
            << " balanced_src=" << c.balanced_src << " halo=" << c.halo;
}

rc::Gen<DistCase> gen_dist_case(int /*world_size*/, int sorted) {
  return rc::gen::exec([sorted] {
    DistCase c;
    c.g = *gen_graph_spec(600, 6000, sorted);
    c.src_sharded = *rc::gen::arbitrary<bool>();
    c.dst_sharded = *rc::gen::arbitrary<bool>();
    c.edges_sharded = *rc::gen::arbitrary<bool>();
    c.with_cond = *rc::gen::arbitrary<bool>();
    c.balanced_src = *rc::gen::arbitrary<bool>();
    c.halo = *rc::gen::arbitrary<bool>();
    return c;
  });
}
rc::Gen<DistCase> gen_sorted_case(int w) {
  return gen_dist_case(w, 1);
}
rc::Gen<DistCase> gen_any_case(int w) {
  return gen_dist_case(w, -1);
}

// ---- build_graph_partition_from_shard_info ---------------------------------------------

void from_shard_info_body(const CommPtr& comm, const DistCase& c) {
  const int w = comm->size(), r = comm->rank();
  const at::Tensor ei = make_edge_index(c.g);
  const auto src_sizes = random_split(c.g.n_src, w, c.g.seed + 7);
  const auto dst_sizes = random_split(c.g.n_dst, w, c.g.seed + 8);
  const auto edge_sizes = random_split(ei.size(1), w, c.g.seed + 9);
  const at::Tensor xs = make_rows(c.g.n_src, {2}, at::kFloat, 1);
  const at::Tensor xd = make_rows(c.g.n_dst, {2}, at::kFloat, 2);
  const BipartiteGraphShardInfo info(c.src_sharded ? ShardSizes(src_sizes) : std::nullopt,
                                     c.dst_sharded ? ShardSizes(dst_sizes) : std::nullopt,
                                     c.edges_sharded ? ShardSizes(edge_sizes) : std::nullopt);
  const PairTensor x{c.src_sharded ? piece(xs, 0, src_sizes, r) : xs,
                     c.dst_sharded ? piece(xd, 0, dst_sizes, r) : xd};
  const at::Tensor ei_in = c.edges_sharded ? piece(ei, 1, edge_sizes, r) : ei;
  const GraphPartition p = build_graph_partition_from_shard_info(ei_in, x, info, comm);
  RC_ASSERT(p.num_nodes == std::make_pair(c.g.n_src, c.g.n_dst));
  RC_ASSERT(p.num_parts == w);
  RC_ASSERT(p.num_edges == ei.size(1));
  if (c.edges_sharded) {
    RC_ASSERT(p.edge_splits == edge_sizes);
    RC_ASSERT(p.dst_splits == (c.dst_sharded ? dst_sizes : ref::graph_balanced(c.g.n_dst, w)));
  } else {
    const auto rp = ref::build_graph_partition(ei, w, c.g.n_src, c.g.n_dst);
    RC_ASSERT(p.dst_splits == rp.dst_splits);
    RC_ASSERT(p.edge_splits == rp.edge_splits);
  }
}

// ---- shard_edges_1hop -------------------------------------------------------------------

void shard_edges_body(const CommPtr& comm, const DistCase& c) {
  const int w = comm->size(), r = comm->rank();
  const at::Tensor ei = make_edge_index(c.g), before = ei.clone();
  const at::Tensor ea = make_rows(ei.size(1), {3}, at::kFloat, c.g.seed);
  // Sorted edges may take either path; unsorted ones only the regrouping one.
  const bool claim_sorted = c.g.sorted && c.with_cond;
  const auto out = shard_edges_1hop(ea, ei, c.g.n_src, c.g.n_dst, comm, claim_sorted);
  if (w == 1) {
    RC_ASSERT(!out.edge_shard_sizes.has_value());
    RC_ASSERT(out.edge_index.is_same(ei));
    RC_ASSERT(out.edge_attr.is_same(ea));
    return;
  }
  const auto expected = ref::regroup_by_dst_block(ea, ei, c.g.n_dst, w);
  RC_ASSERT(out.edge_shard_sizes.has_value());
  RC_ASSERT(*out.edge_shard_sizes == expected.sizes);
  expect_equal(out.edge_index, piece(expected.edge_index, 1, expected.sizes, r), "edge_index");
  expect_equal(out.edge_attr, piece(expected.edge_attr, 0, expected.sizes, r), "edge_attr");
  expect_equal(ei, before, "input edge_index");
}

// ---- shard_graph_to_local ---------------------------------------------------------------

void shard_graph_to_local_body(const CommPtr& comm, const DistCase& c) {
  const int w = comm->size(), r = comm->rank();
  const at::Tensor ei = make_edge_index(c.g), before = ei.clone();
  const at::Tensor xs = make_rows(c.g.n_src, {3}, at::kDouble, c.g.seed + 1);
  const at::Tensor xd = make_rows(c.g.n_dst, {2}, at::kDouble, c.g.seed + 2);
  const at::Tensor ea = make_rows(ei.size(1), {2, 2}, at::kDouble, c.g.seed + 3);
  const at::Tensor cs = make_rows(c.g.n_src, {1}, at::kDouble, c.g.seed + 4);
  const at::Tensor cd = make_rows(c.g.n_dst, {4}, at::kDouble, c.g.seed + 5);
  const GraphPartition p = build_graph_partition(ei, w, {c.g.n_src, c.g.n_dst});
  const auto src_sizes =
      c.balanced_src ? ref::graph_balanced(c.g.n_src, w) : random_split(c.g.n_src, w, c.g.seed + 6);
  const BipartiteGraphShardInfo info(c.src_sharded ? ShardSizes(src_sizes) : std::nullopt,
                                     c.dst_sharded ? ShardSizes(p.dst_splits) : std::nullopt,
                                     c.edges_sharded ? ShardSizes(p.edge_splits) : std::nullopt);
  const at::Tensor xs_in = c.src_sharded ? piece(xs, 0, src_sizes, r) : xs;
  const at::Tensor cs_in = c.src_sharded ? piece(cs, 0, src_sizes, r) : cs;
  const at::Tensor xd_in = c.dst_sharded ? piece(xd, 0, p.dst_splits, r) : xd;
  const at::Tensor ei_in = c.edges_sharded ? piece(ei, 1, p.edge_splits, r) : ei;
  const at::Tensor ea_in = c.edges_sharded ? piece(ea, 0, p.edge_splits, r) : ea;
  std::optional<PairTensor> cond;
  if (c.with_cond) cond = PairTensor{cs_in, cd};
  const LocalGraph out = shard_graph_to_local(p, {xs_in, xd_in}, ea_in, ei_in, info, comm, cond,
                                              c.halo ? SrcExchange::kHalo : SrcExchange::kAllGather);
  if (w == 1) {  // not distributed: everything unchanged
    RC_ASSERT(out.x_src.is_same(xs_in) && out.x_dst.is_same(xd_in));
    RC_ASSERT(out.edge_attr.is_same(ea_in) && out.edge_index.is_same(ei_in));
    RC_ASSERT(out.shard_info == info);
    RC_ASSERT(out.cond.has_value() == c.with_cond);
    return;
  }
  const auto [dlo, dhi] = partition_range(p.dst_splits, r);
  std::optional<ref::RefPair> rcond;
  if (c.with_cond) rcond = ref::RefPair{cs, cd};
  const auto expected = ref::subgraph(xs, xd, ea, ei, dlo, dhi, rcond);
  expect_equal(out.x_src, expected.x_src, "x_src");
  expect_equal(out.x_dst, expected.x_dst, "x_dst");
  expect_equal(out.edge_attr, expected.edge_attr, "edge_attr");
  expect_equal(out.edge_index, expected.edge_index, "edge_index");
  RC_ASSERT(out.shard_info ==
            BipartiteGraphShardInfo(info.src_nodes(), p.dst_splits, p.edge_splits));
  RC_ASSERT(out.cond.has_value() == c.with_cond);
  if (c.with_cond) {
    expect_equal(out.cond->first, expected.cond->first, "cond_src");
    RC_ASSERT(out.cond->second.is_same(cd));  // returned as given
  }
  expect_equal(ei, before, "input edge_index");
}

}  // namespace

GRAPHSHARD_PROPERTY(BuildGraphPartitionFromShardInfo, MatchesShardInfoOrReference, gen_sorted_case,
                    from_shard_info_body);
GRAPHSHARD_PROPERTY(ShardEdges1hop, EachRankGetsItsDestinationBlockInInputOrder, gen_any_case,
                    shard_edges_body);
GRAPHSHARD_PROPERTY(ShardGraphToLocal, MatchesReferenceSubgraphOnEveryRank, gen_sorted_case,
                    shard_graph_to_local_body);

}  // namespace graphshard::props
