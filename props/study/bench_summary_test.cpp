// The benchmark summary: pairing of rows from Google Benchmark JSON, errors surfacing, and the
// significance test of the regression comparison.
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
