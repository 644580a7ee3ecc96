// Bad input (SPEC §5) on random graphs: every precondition of the graph functions, violated on
// purpose, raises c10::ValueError naming the function and the argument on every rank, before any
// collective, and leaves the inputs unchanged. The violations are the bad-input catalogue's
// (badinput_catalogue.h); here they are drawn on random dst-sorted graphs (int64 or int32, with
// duplicates, hubs, self-loops), random world sizes and either value of the sorted flags.
#include <initializer_list>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "badinput_catalogue.h"
#include "graph_generators.h"

namespace graphshard::props {
namespace {

// A sorted graph with at least one edge and at least two destinations.
GraphFixture draw_fixture() {
  const auto g = *rc::gen::suchThat(gen_graph_spec(300, 2000, 1), [](const GraphSpec& s) {
    return s.n_src > 0 && s.n_dst > 1 && s.num_edges > 0;
  });
  const bool sorted_flag = *rc::gen::arbitrary<bool>().as("edges_are_dst_sorted flags");
  return GraphFixture{g.n_src, g.n_dst, make_edge_index(g), sorted_flag};
}

// Every case of each function on a random graph and W in [lo, hi] simulated ranks.
void expect_all_rejected(std::initializer_list<const char*> functions, int lo, int hi) {
  const GraphFixture f = draw_fixture();
  const int w = *rc::gen::inRange(lo, hi + 1).as("world size");
  for (const char* fn : functions) {
    for (const auto& c : cases_of(fn, graph_cases(f, w))) {
      const std::string problem = run_case_on_sim(c, w);
      if (!problem.empty()) RC_FAIL(problem);
    }
  }
}

}  // namespace

RC_GTEST_PROP(SortEdgeIndexByDst, RejectsBadEdgeIndexAndMaxValue, ()) {
  expect_all_rejected({"sort_edge_index_by_dst", "is_edge_index_dst_sorted"}, 1, 2);
}

RC_GTEST_PROP(BuildGraphPartition, RejectsBadArgumentsAndUnsortedEdgesUnderDebugChecks, ()) {
  expect_all_rejected({"build_graph_partition"}, 1, 2);
}

RC_GTEST_PROP(GraphPartition, MaterialiseRejectsBadArguments, ()) {
  // Each rank materialises its own part of a W-part partition.
  expect_all_rejected({"GraphPartition::materialise"}, 1, 9);
}

RC_GTEST_PROP(SortEdges1hopChunks, RejectsBadArguments, ()) {
  expect_all_rejected({"sort_edges_1hop_chunks"}, 1, 2);
}

RC_GTEST_PROP(DropUnconnectedSrcNodes, RejectsBadArguments, ()) {
  expect_all_rejected({"drop_unconnected_src_nodes"}, 1, 2);
}

RC_GTEST_PROP(EnsureEdgesAreDstSorted, EveryRankRejectsBadArguments, ()) {
  // W >= 2 includes the refusal to sort a distributed edge shard.
  expect_all_rejected({"ensure_edges_are_dst_sorted"}, 1, 4);
}

RC_GTEST_PROP(ShardEdges1hop, EveryRankRejectsBadArguments, ()) {
  expect_all_rejected({"shard_edges_1hop"}, 1, 4);
}

RC_GTEST_PROP(ShardGraphToLocal, EveryRankRejectsBadArguments, ()) {
  expect_all_rejected({"shard_graph_to_local"}, 2, 4);
}

RC_GTEST_PROP(BuildGraphPartitionFromShardInfo, EveryRankRejectsBadArguments, ()) {
  expect_all_rejected({"build_graph_partition_from_shard_info"}, 1, 4);
}

}  // namespace graphshard::props
