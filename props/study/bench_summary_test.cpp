// The benchmark summary: pairing of rows from Google Benchmark JSON (the C++ suites' bare, naive
// and floor rows; the peer suite's anemoi rows), errors surfacing, the targets against
// anemoi-models, and the significance test of the regression comparison.
#include <gtest/gtest.h>

#include "bench_summary.h"

namespace graphshard::bench {
namespace {

using json = nlohmann::json;

json row(const std::string& role, double ms, int rep, const json& extra = json::object()) {
  json r = {{"name", "gather_tensor/" + role},
            {"run_name", "gather_tensor/" + role},
            {"run_type", "iteration"},
            {"repetition_index", rep},
            {"real_time", ms},
            {"time_unit", "ms"},
            {"label", "function=gather_tensor;role=" + role + ";engine=sim"},
            {"world_size", 2.0},
            {"bytes", 1048576.0},
            {"dim", 0.0}};
  r.update(extra);
  return r;
}

TEST(BenchSummary, PairsEachFunctionWithItsBareAndNaiveRowsByMedian) {
  json g = {{"benchmarks", json::array()}};
  for (int rep = 0; rep < 3; ++rep) {
    g["benchmarks"].push_back(row("graphshard", 1.0 + rep, rep));  // median 2 ms
    g["benchmarks"].push_back(row("bare", 1.6, rep));
    g["benchmarks"].push_back(row("naive", 4.0, rep));
  }
  // Aggregates are ignored: medians come from the repetitions.
  g["benchmarks"].push_back(row("graphshard", 100.0, 0, {{"run_type", "aggregate"}}));
  const auto samples = read_samples(g, "test.json");
  ASSERT_EQ(samples.size(), 3u);
  const auto rows = summarise(samples);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_DOUBLE_EQ(rows[0].median_seconds, 2e-3);
  EXPECT_DOUBLE_EQ(*rows[0].ratio_to_bare, 2.0 / 1.6);
  EXPECT_DOUBLE_EQ(*rows[0].ratio_to_naive, 0.5);
  EXPECT_FALSE(rows[0].peak_extra_memory_ratio.has_value());
  const json j = summary_json(rows);
  EXPECT_EQ(j[0]["function"], "gather_tensor");
  EXPECT_EQ(j[0]["bytes"], 1048576);
  EXPECT_TRUE(j[0]["edges"].is_null());
}

TEST(BenchSummary, FloorRatioIsTheFloorRowOverBare) {
  json g = {{"benchmarks", json::array()}};
  for (int rep = 0; rep < 3; ++rep) {
    g["benchmarks"].push_back(row("graphshard", 3.0, rep));
    g["benchmarks"].push_back(row("bare", 2.0, rep));
    g["benchmarks"].push_back(row("floor", 2.5 + rep, rep));  // median 3.5 ms
  }
  const auto rows = summarise(read_samples(g, "test.json"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_DOUBLE_EQ(*rows[0].floor_ratio_to_bare, 3.5 / 2.0);
  EXPECT_FALSE(rows[0].ratio_to_naive.has_value());
  EXPECT_DOUBLE_EQ(summary_json(rows)[0]["floor_ratio_to_bare"].get<double>(), 1.75);
}

TEST(BenchSummary, RatioRangeIsOverRepetitionsMeasuredTogether) {
  json g = {{"benchmarks", json::array()}};
  for (int rep = 0; rep < 3; ++rep) {
    g["benchmarks"].push_back(row("graphshard", 2.0 + rep, rep));  // 2, 3, 4 ms
    g["benchmarks"].push_back(row("bare", 2.0 * (rep + 1), rep));  // 2, 4, 6 ms
  }
  const auto rows = summarise(read_samples(g, "test.json"));
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_TRUE(rows[0].ratio_to_bare_range.has_value());
  EXPECT_DOUBLE_EQ(rows[0].ratio_to_bare_range->first, 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(rows[0].ratio_to_bare_range->second, 1.0);
  EXPECT_DOUBLE_EQ(*rows[0].ratio_to_bare, 3.0 / 4.0);
  EXPECT_EQ(summary_json(rows)[0]["ratio_to_bare_range"], json::array({4.0 / 6.0, 1.0}));
}

TEST(BenchSummary, ABenchmarkErrorFailsTheRunNamingIt) {
  json g = {{"benchmarks",
             {row("graphshard", 1.0, 0,
                  {{"error_occurred", true}, {"error_message", "result differs"}})}}};
  try {
    read_samples(g, "suite.json");
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("suite.json"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("result differs"), std::string::npos);
  }
}

// A row as bench/suites/peer_anemoi.py writes it: integer counters, nanoseconds per call.
json peer_row(const std::string& function, const std::string& role, double ns, int rep,
              int64_t dim = 0) {
  const std::string name =
      "peer_anemoi/" + function + "/" + role + "/engine:py-gloo/W:2/dim:" + std::to_string(dim);
  return {{"name", name},
          {"run_name", name},
          {"run_type", "iteration"},
          {"repetition_index", rep},
          {"iterations", 100},
          {"real_time", ns},
          {"time_unit", "ns"},
          {"label", "function=" + function + ";role=" + role + ";engine=py-gloo"},
          {"world_size", 2},
          {"bytes", 65536},
          {"dim", dim}};
}

TEST(BenchSummary, PairsEachPeerRowWithItsAnemoiRowOfTheSamePayload) {
  json g = {{"benchmarks", json::array()}};
  for (int rep = 0; rep < 3; ++rep) {
    g["benchmarks"].push_back(
        peer_row("gather_tensor uneven", "graphshard", 1000.0 + 500 * rep, rep));
    g["benchmarks"].push_back(peer_row("gather_tensor uneven", "anemoi", 4000.0 - 1000 * rep, rep));
    // Another payload (dim 1) and another variant: never paired with the rows above.
    g["benchmarks"].push_back(peer_row("gather_tensor uneven", "anemoi", 1.0, rep, 1));
    g["benchmarks"].push_back(peer_row("gather_tensor", "anemoi", 1.0, rep));
  }
  const auto samples = read_samples(g, "peer.json");
  ASSERT_EQ(samples.size(), 4u);
  EXPECT_EQ(samples[0].key.function, "gather_tensor uneven");
  EXPECT_EQ(samples[0].key.engine, "py-gloo");
  EXPECT_EQ(samples[0].key.world_size, 2);
  EXPECT_EQ(samples[0].key.bytes, 65536);
  EXPECT_EQ(samples[0].key.edges, -1);
  const auto rows = summarise(samples);
  ASSERT_EQ(rows.size(), 1u);  // one graphshard row; anemoi rows alone make none
  EXPECT_DOUBLE_EQ(rows[0].median_seconds, 1.5e-6);
  EXPECT_DOUBLE_EQ(*rows[0].ratio_to_anemoi, 1.5 / 3.0);  // medians: 1500 ns / 3000 ns
  // Repetition k of both roles measured together: 1000/4000, 1500/3000, 2000/2000.
  ASSERT_TRUE(rows[0].ratio_to_anemoi_range.has_value());
  EXPECT_DOUBLE_EQ(rows[0].ratio_to_anemoi_range->first, 0.25);
  EXPECT_DOUBLE_EQ(rows[0].ratio_to_anemoi_range->second, 1.0);
  EXPECT_FALSE(rows[0].ratio_to_bare.has_value());
  EXPECT_FALSE(rows[0].ratio_to_naive.has_value());
  const json j = summary_json(rows);
  EXPECT_DOUBLE_EQ(j[0]["ratio_to_anemoi"].get<double>(), 0.5);
  EXPECT_EQ(j[0]["ratio_to_anemoi_range"], json::array({0.25, 1.0}));
  EXPECT_TRUE(j[0]["ratio_to_bare"].is_null());
  EXPECT_EQ(j[0]["function"], "gather_tensor uneven");
}

TEST(BenchSummary, FloorOverAnemoiIsTheFloorRowOverTheAnemoiRow) {
  json g = {{"benchmarks", json::array()}};
  for (int rep = 0; rep < 3; ++rep) {
    g["benchmarks"].push_back(peer_row("reduce_shard_tensor", "graphshard", 2000.0, rep));
    g["benchmarks"].push_back(peer_row("reduce_shard_tensor", "anemoi", 3000.0 + 100 * rep, rep));
    g["benchmarks"].push_back(peer_row("reduce_shard_tensor", "floor", 1600.0 + 200 * rep, rep));
  }
  const auto rows = summarise(read_samples(g, "peer.json"));
  ASSERT_EQ(rows.size(), 1u);  // the floor row is a reference, not a row of its own
  ASSERT_TRUE(rows[0].floor_ratio_to_anemoi.has_value());
  EXPECT_DOUBLE_EQ(*rows[0].floor_ratio_to_anemoi, 1800.0 / 3100.0);  // medians
  EXPECT_FALSE(rows[0].floor_ratio_to_bare.has_value());              // no bare row
  EXPECT_DOUBLE_EQ(summary_json(rows)[0]["floor_ratio_to_anemoi"].get<double>(), 1800.0 / 3100.0);
}

TEST(BenchSummary, RowsWithoutAnAnemoiRowHaveNoRatioToAnemoi) {
  json g = {{"benchmarks", {row("graphshard", 1.0, 0), row("bare", 1.0, 0)}}};
  const auto rows = summarise(read_samples(g, "test.json"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_FALSE(rows[0].ratio_to_anemoi.has_value());
  EXPECT_TRUE(summary_json(rows)[0]["ratio_to_anemoi"].is_null());
  EXPECT_TRUE(summary_json(rows)[0]["floor_ratio_to_anemoi"].is_null());
}

TEST(BenchSummary, AnemoiTargetIsHalfWhereGraphshardDoesHalfTheWork) {
  auto target = [](const std::string& function, int64_t edges = -1) {
    Key k{function, "graphshard", "py-gloo", 2, edges >= 0 ? -1 : 4096, edges >= 0 ? -1 : 0, edges};
    return anemoi_target(k);
  };
  EXPECT_EQ(target("reduce_shard_tensor"), 0.5);
  EXPECT_EQ(target("reduce_shard_tensor uneven"), 0.5);
  EXPECT_EQ(target("reduce_shard_tensor backward"), 1.0);  // a gather, as anemoi's
  EXPECT_EQ(target("gather_tensor uneven"), 0.5);
  EXPECT_EQ(target("gather_tensor"), 1.0);
  EXPECT_EQ(target("gather_tensor uneven backward"), 1.0);  // a split, as anemoi's
  EXPECT_EQ(target("sync_tensor backward"), 0.5);
  EXPECT_EQ(target("sync_tensor uneven backward"), 0.5);
  EXPECT_EQ(target("sync_tensor"), 1.0);
  EXPECT_EQ(target("shard_tensor backward"), 1.0);
  EXPECT_EQ(target("all_to_all_transpose uneven"), 1.0);
  EXPECT_EQ(target("sort_edge_index_by_dst", 100000), 1.0);
  EXPECT_EQ(target("sort_edge_index_by_dst", 1000000), 0.5);
  EXPECT_EQ(target("shard_graph_to_local backward", 10000000), 0.5);
}

TEST(BenchSummary, MannWhitneySeparatesShiftedSamplesAndNotEqualOnes) {
  const std::vector<double> a{1.00, 1.01, 0.99, 1.02, 0.98}, b{1.30, 1.31, 1.29, 1.32, 1.28};
  EXPECT_LT(mann_whitney_p(a, b), 0.05);
  EXPECT_GT(mann_whitney_p(a, a), 0.5);
  const std::vector<double> c{1.00, 1.30, 0.99, 1.31, 1.02};
  EXPECT_GT(mann_whitney_p(a, c), 0.05);
}

TEST(BenchSummary, ComparisonFailsOnlyOnASignificantSlowdownBeyondTheThreshold) {
  Sample s;
  s.name = "x";
  s.seconds = {1.30, 1.31, 1.29, 1.32, 1.28};
  const json slower_base = {{"benchmarks", {{"x", {1.00, 1.01, 0.99, 1.02, 0.98}}}}};
  EXPECT_FALSE(compare_to_baseline({s}, slower_base, 0.10));
  EXPECT_TRUE(compare_to_baseline({s}, slower_base, 0.50));  // 30% is within a 50% threshold
  const json same_base = {{"benchmarks", {{"x", s.seconds}}}};
  EXPECT_TRUE(compare_to_baseline({s}, same_base, 0.10));
}

}  // namespace
}  // namespace graphshard::bench
