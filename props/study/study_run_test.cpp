// The study runner on small graphs: the sharded layer verifies against the unsharded one, the
// per-rank metrics add up to the graph, and a plan-only study reports the same partition.
#include <gtest/gtest.h>

#include <map>
#include <numeric>

#include "graphshard/partitioners.h"

#include "study_run.h"

namespace graphshard::study {
namespace {

StudyConfig small_config(const std::string& engine_kind) {
  StudyConfig c;
  c.name = "test";
  c.graph.kind = engine_kind;
  if (engine_kind == "random") {
    c.graph.num_src = 300;
    c.graph.num_dst = 170;
    c.graph.avg_degree = 6;
    c.graph.seed = 11;
  } else {  // encoder
    c.graph.grid_n = 8;
    c.graph.mesh_refinement = 2;
    c.graph.knn = 3;
  }
  c.channels = 8;
  c.edge_channels = 3;
  c.dtype = at::kFloat;
  c.world_sizes = {1, 2, 3, 5};
  c.repeats = 1;
  c.warmup = 0;
  c.verify = true;
  return c;
}

int64_t sum_of(const WorldResult& w, int64_t RankMetrics::*field) {
  int64_t s = 0;
  for (const auto& r : w.ranks) s += r.*field;
  return s;
}

void expect_partition_adds_up(const StudyResult& res) {
  for (const auto& w : res.worlds) {
    SCOPED_TRACE("W=" + std::to_string(w.world_size));
    ASSERT_EQ(static_cast<int>(w.ranks.size()), w.world_size);
    EXPECT_EQ(sum_of(w, &RankMetrics::dst_nodes), res.num_dst);
    EXPECT_EQ(sum_of(w, &RankMetrics::edges), res.num_edges);
    for (const auto& r : w.ranks) {
      EXPECT_LE(r.halo_src_nodes, res.num_src);
      EXPECT_LE(r.halo_src_nodes, r.edges) << "a used source needs at least one edge";
    }
    EXPECT_GE(w.edges_imbalance, 1.0);
  }
}

class StudyRun : public ::testing::TestWithParam<std::string> {};

TEST_P(StudyRun, ShardedLayerVerifiesAndMetricsAddUp) {
  const StudyConfig c = small_config(GetParam());
  const StudyResult res = run_study(c, "", [](const std::string&) {});
  ASSERT_EQ(res.worlds.size(), c.world_sizes.size());
  expect_partition_adds_up(res);
  for (const auto& w : res.worlds) {
    SCOPED_TRACE("W=" + std::to_string(w.world_size));
    ASSERT_TRUE(w.verified.has_value());
    EXPECT_TRUE(*w.verified) << w.verify_detail;
    EXPECT_GT(w.step_seconds, 0);
    if (w.world_size == 1) {
      EXPECT_EQ(w.total_bytes_sent, 0) << "one rank has nobody to talk to";
    } else {
      // Sharded sources are all-gathered: each rank sends its rows to every other rank.
      const int64_t row = c.channels * 4;
      EXPECT_GE(w.total_bytes_sent, res.num_src * row * (w.world_size - 1));
    }
  }
}

TEST_P(StudyRun, PlanOnlyReportsTheSamePartitionAsARun) {
  StudyConfig c = small_config(GetParam());
  const StudyResult run = run_study(c, "", [](const std::string&) {});
  c.plan_only = true;
  const StudyResult plan = run_study(c, "", [](const std::string&) {});
  ASSERT_EQ(plan.worlds.size(), run.worlds.size());
  for (size_t i = 0; i < run.worlds.size(); ++i) {
    EXPECT_FALSE(plan.worlds[i].verified.has_value());
    for (size_t r = 0; r < run.worlds[i].ranks.size(); ++r) {
      const RankMetrics& a = run.worlds[i].ranks[r];
      const RankMetrics& b = plan.worlds[i].ranks[r];
      EXPECT_EQ(a.dst_nodes, b.dst_nodes);
      EXPECT_EQ(a.edges, b.edges);
      EXPECT_EQ(a.halo_src_nodes, b.halo_src_nodes);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Graphs, StudyRun, ::testing::Values("random", "encoder"));

// Every partitioning scheme with either source exchange: the renumbered, sharded layer equals the
// unsharded one on the graph's own numbering, the parts add up, a plan reports the same
// partition, and on a locality-aware partition the halo exchange moves less than the all-gather.
TEST(StudyRun, EverySchemeAndExchangeVerifiesAndPlansTheSamePartition) {
  StudyConfig c = small_config("encoder");
  for (const auto s : all_partition_schemes()) c.schemes.push_back(to_string(s));
  c.schemes.erase(c.schemes.begin());  // the default "contiguous" is in the list
  c.src_exchanges = {"all_gather", "halo"};
  c.world_sizes = {1, 3, 4};
  const StudyResult run = run_study(c, "", [](const std::string&) {});
  ASSERT_EQ(run.worlds.size(), c.num_variants() * c.world_sizes.size());
  expect_partition_adds_up(run);
  std::map<std::string, int64_t> sent_at_4;
  size_t i = 0;
  for (const auto& scheme : c.schemes) {
    for (const auto& exchange : c.src_exchanges) {
      for (const int world : c.world_sizes) {
        const WorldResult& w = run.worlds[i++];
        SCOPED_TRACE(scheme + ", " + exchange + ", W=" + std::to_string(world));
        EXPECT_EQ(w.scheme, scheme);
        EXPECT_EQ(w.src_exchange, exchange);
        EXPECT_EQ(w.world_size, world);
        ASSERT_TRUE(w.verified.has_value());
        EXPECT_TRUE(*w.verified) << w.verify_detail;
        if (world == 4) sent_at_4[scheme + "/" + exchange] = w.total_bytes_sent;
      }
    }
  }
  EXPECT_LT(sent_at_4.at("metis/halo"), sent_at_4.at("metis/all_gather"));
  EXPECT_LT(sent_at_4.at("hilbert/halo"), sent_at_4.at("hilbert/all_gather"));
  c.plan_only = true;
  const StudyResult plan = run_study(c, "", [](const std::string&) {});
  ASSERT_EQ(plan.worlds.size(), run.worlds.size());
  for (size_t k = 0; k < run.worlds.size(); ++k) {
    for (size_t r = 0; r < run.worlds[k].ranks.size(); ++r) {
      EXPECT_EQ(run.worlds[k].ranks[r].dst_nodes, plan.worlds[k].ranks[r].dst_nodes);
      EXPECT_EQ(run.worlds[k].ranks[r].edges, plan.worlds[k].ranks[r].edges);
      EXPECT_EQ(run.worlds[k].ranks[r].halo_src_nodes, plan.worlds[k].ranks[r].halo_src_nodes);
    }
  }
}

TEST(StudyRun, RankMetricsRoundTripThroughJson) {
  RankMetrics m;
  m.rank = 3;
  m.dst_nodes = 10;
  m.edges = 77;
  m.halo_src_nodes = 21;
  m.local_bytes = 4096;
  m.bytes_sent["all_gather_v"] = 123;
  m.bytes_received["all_gather_v"] = 456;
  m.seconds["backward"] = 0.25;
  m.cpu_seconds["backward"] = 0.125;
  const RankMetrics back = rank_metrics_from_json(rank_metrics_to_json(m));
  EXPECT_EQ(back.rank, m.rank);
  EXPECT_EQ(back.edges, m.edges);
  EXPECT_EQ(back.halo_src_nodes, m.halo_src_nodes);
  EXPECT_EQ(back.local_bytes, m.local_bytes);
  EXPECT_EQ(back.bytes_sent, m.bytes_sent);
  EXPECT_EQ(back.bytes_received, m.bytes_received);
  EXPECT_EQ(back.seconds, m.seconds);
  EXPECT_EQ(back.cpu_seconds, m.cpu_seconds);
}

}  // namespace
}  // namespace graphshard::study
