// The summary of `graphshard bench`: reads Google Benchmark JSON written by the suites (rows
// tagged as in bench_common.h), pairs each graphshard row with its bare and naive rows and, from
// the peer suite (bench/suites/peer_anemoi.py), its anemoi row, checks the performance targets,
// and compares against a stored baseline.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace graphshard::bench {

struct Key {
  std::string function, role, engine;
  int world_size = 1;
  int64_t bytes = -1, dim = -1, edges = -1;  // -1: does not apply
};

// One benchmark's repetitions.
struct Sample {
  std::string name;  // Google Benchmark's run name, unique per suite and engine
  Key key;
  std::vector<double> seconds;  // one per repetition
  std::optional<double> peak_extra_memory_ratio;
};

// Throws naming the file and the benchmark when any benchmark reported an error (a result that
// differs from the naive one): the smoke pass relies on it.
std::vector<Sample> read_samples(const nlohmann::json& gbench, const std::string& origin);

struct SummaryRow {
  Key key;
  double median_seconds = 0;
  std::optional<double> ratio_to_bare, ratio_to_naive, peak_extra_memory_ratio;
  // floor / bare: the bare collective timed together with what a primitive cannot avoid beyond
  // it, a fresh output and, for pieces cut along a non-leading dim, one layout copy (see
  // bench_primitives.cpp).
  std::optional<double> floor_ratio_to_bare;
  // Smallest and largest graphshard / bare over the repetitions (each measured together).
  std::optional<std::pair<double, double>> ratio_to_bare_range;
  // graphshard / anemoi-models on the same payload, through Python (role=anemoi rows, written by
  // peer_anemoi.py), and its smallest and largest over the repetitions.
  std::optional<double> ratio_to_anemoi;
  std::optional<std::pair<double, double>> ratio_to_anemoi_range;
  // floor / anemoi on peer rows that have a floor row (the least graphshard's contract leaves to
  // do, by torch.distributed's own collective: peer_cases.py): above a row's target, the target
  // is out of reach on that transport.
  std::optional<double> floor_ratio_to_anemoi;
};

std::vector<SummaryRow> summarise(const std::vector<Sample>& samples);

// The bound on graphshard / anemoi (issue 19, "never slower than anemoi-models"): 1.0 on every
// row of the peer suite, 0.5 where graphshard does half the work or less: reduce_shard_tensor's
// forward (one reduce-scatter against an all-reduce then a split), an uneven gather_tensor's
// forward (no padding), sync_tensor's backward (a reduce-scatter against an all-reduce then a
// split), and every graph function at E >= 1e6. Function names carry the variant
// (peer_cases.py): "F", "F uneven", "F backward", "F uneven backward", "F unsorted".
double anemoi_target(const Key& key);
void print_summary(const std::vector<SummaryRow>& rows);  // the table, then the targets
nlohmann::json summary_json(const std::vector<SummaryRow>& rows);

// Baseline: {"benchmarks": {name: [seconds...]}}.
nlohmann::json baseline_json(const std::vector<Sample>& samples);
// Prints each benchmark's change; false when one is slower by more than `threshold` (relative
// change of the medians) with a Mann-Whitney U p-value below 0.05.
bool compare_to_baseline(const std::vector<Sample>& samples, const nlohmann::json& baseline,
                         double threshold);
// Two-sided p-value of the Mann-Whitney U test (normal approximation, tie-corrected).
double mann_whitney_p(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace graphshard::bench
