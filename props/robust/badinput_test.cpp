// The bad-input catalogue (badinput_catalogue.h): every case on simulated ranks, W = 1..4, and,
// in the Gloo test binary, every case over real processes (BadInput.CatalogueOverGloo, which
// gloo_main.cpp registers like the replayed properties).
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "badinput_catalogue.h"
#include "harness.h"

namespace graphshard::props {
namespace {

constexpr int kMaxWorld = 4;

// Every public function with preconditions (SPEC §2-§4), as its messages name it.
const char* const kFunctions[] = {"ensure_sharded",
                                  "shard_tensor",
                                  "gather_tensor",
                                  "reduce_tensor",
                                  "sync_tensor",
                                  "reduce_shard_tensor",
                                  "all_to_all_transpose",
                                  "sort_edge_index_by_dst",
                                  "is_edge_index_dst_sorted",
                                  "build_graph_partition",
                                  "build_graph_partition_from_shard_info",
                                  "GraphPartition::materialise",
                                  "ensure_edges_are_dst_sorted",
                                  "shard_edges_1hop",
                                  "shard_graph_to_local",
                                  "sort_edges_1hop_chunks",
                                  "drop_unconnected_src_nodes",
                                  "build_halo_info",
                                  "halo_exchange",
                                  "verify_halo_info",
                                  "partition_graph",
                                  "get_shard_sizes",
                                  "expand_shard_sizes_to_shapes",
                                  "balanced_sizes",
                                  "partition_range"};

std::string report(const std::vector<std::string>& failures) {
  std::ostringstream os;
  os << failures.size() << " failure(s):";
  for (const auto& f : failures) os << "\n" << f;
  return os.str();
}

std::vector<std::string> run_on_sim(int w) {
  std::vector<std::string> failures;
  for (const auto& c : badinput_catalogue(w)) {
    const std::string problem = run_case_on_sim(c, w);
    if (!problem.empty()) failures.push_back(problem);
  }
  return failures;
}

TEST(BadInput, EveryCaseRaisesOnEveryRankBeforeAnyCollective) {
  std::vector<std::string> failures;
  int runs = 0;
  for (int w = 1; w <= kMaxWorld; ++w) {
    for (const auto& c : badinput_catalogue(w)) runs += w >= c.min_world ? 1 : 0;
    const auto more = run_on_sim(w);
    failures.insert(failures.end(), more.begin(), more.end());
  }
  std::printf("bad-input catalogue: %zu cases x %d world sizes (%d runs on simulated ranks)\n",
              badinput_catalogue(1).size(), kMaxWorld, runs);
  EXPECT_TRUE(failures.empty()) << report(failures);
}

TEST(BadInput, CatalogueCoversEveryPublicFunctionTheSameWayAtEveryWorldSize) {
  const auto reference = badinput_catalogue(2);
  std::map<std::string, int> per_function;
  std::set<std::string> names;
  for (const auto& c : reference) {
    ++per_function[c.function];
    EXPECT_TRUE(names.insert(c.name()).second) << "two cases named " << c.name();
    EXPECT_FALSE(c.argument.empty() || c.violation.empty()) << c.name();
    EXPECT_TRUE(static_cast<bool>(c.make)) << c.name();
  }
  for (const char* fn : kFunctions) {
    EXPECT_GT(per_function[fn], 0) << fn << " has no bad-input case";
  }
  EXPECT_EQ(per_function.size(), std::size(kFunctions)) << "a case names an unlisted function";
  std::printf("bad-input cases per function:\n");
  for (const auto& [fn, n] : per_function) std::printf("  %-40s %3d\n", fn.c_str(), n);
  for (int w = 1; w <= kMaxWorld; ++w) {
    const auto catalogue = badinput_catalogue(w);
    ASSERT_EQ(catalogue.size(), reference.size()) << "W=" << w;
    for (size_t i = 0; i < catalogue.size(); ++i) {
      EXPECT_EQ(catalogue[i].name(), reference[i].name()) << "W=" << w;
    }
  }
}

// Over a real group: each case on this rank, the ranks agreeing after each (run_case_on_comm),
// so they stay in step; a case that loses them is cut short by the group's timeout.
void run_over(const CommPtr& comm) {
  const auto catalogue = badinput_catalogue(comm->size());
  std::vector<std::string> failures;
  for (const auto& c : catalogue) {
    const std::string problem = run_case_on_comm(c, comm);
    if (!problem.empty()) failures.push_back(problem);
  }
  if (comm->rank() == 0) {
    std::printf("bad-input catalogue over %s: %zu cases at W=%d\n", comm->engine().c_str(),
                catalogue.size(), comm->size());
  }
  EXPECT_TRUE(failures.empty()) << "rank " << comm->rank() << ": " << report(failures);
}

const bool registered_over_gloo = [] {
  property_registry().push_back(RegisteredProperty{
      "BadInput", "Catalogue",
      [] {
        const CommPtr comm = gloo_comm();
        if (!comm) throw std::runtime_error("BadInput.CatalogueOverGloo: no Gloo communicator");
        run_over(comm);
      },
      [](int w, uint64_t, int) {
        const auto failures = run_on_sim(w);
        if (!failures.empty()) throw std::runtime_error(report(failures));
      }});
  return true;
}();

}  // namespace
}  // namespace graphshard::props
