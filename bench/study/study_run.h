// The scaling-study runner: for each world size, build and partition the graph, run a sharded
// message-passing layer (forward and backward) on W ranks, and measure what each rank holds,
// sends and spends. Plan-only studies stop after the partition (no features).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "study_config.h"
#include "weather_graphs.h"

namespace graphshard::study {

struct RankMetrics {
  int rank = 0;
  int64_t dst_nodes = 0, edges = 0, halo_src_nodes = 0;
  int64_t local_bytes = 0;                    // features + edges this rank holds after sharding
  std::map<std::string, int64_t> bytes_sent;  // per communicator operation, one step
  std::map<std::string, int64_t> bytes_received;
  // Per stage (shard_graph_to_local: the source exchange; layer_forward: local; backward: the
  // exchange's adjoint), one step. Plan-only: the estimate of the source exchange's two halves.
  std::map<std::string, int64_t> bytes_sent_by_stage;
  std::map<std::string, double> seconds;      // per stage: median wall time over repeats
  std::map<std::string, double> cpu_seconds;  // per stage: median thread CPU time over repeats
};

struct WorldResult {
  int world_size = 1;
  std::string scheme = "contiguous", src_exchange = "all_gather";  // the study's variant
  std::vector<RankMetrics> ranks;
  double dst_nodes_imbalance = 1, edges_imbalance = 1, halo_imbalance = 1;
  int64_t total_bytes_sent = 0, max_rank_bytes_sent = 0;
  int64_t halo_bytes_max = 0;  // rows of halo sources x feature bytes: what a halo exchange needs
  std::map<std::string, double> stage_seconds;  // per stage: max over ranks of the medians
  double step_seconds = 0;                      // sum of stage_seconds
  double critical_path_cpu_seconds = 0;         // max over ranks of the step's thread CPU time
  double parallel_efficiency = 0;               // T_cpu(1) / (W * critical path); 0 when W=1 absent
  int64_t peak_rss_bytes = 0;
  std::optional<bool> verified;  // nullopt: not checked
  std::string verify_detail;
};

struct StudyResult {
  StudyConfig config;
  std::string graph_name;
  int64_t num_src = 0, num_dst = 0, num_edges = 0;
  double graph_build_seconds = 0;
  std::vector<WorldResult> worlds;  // variant by variant (config order), each over world sizes
};

using Progress = std::function<void(const std::string&)>;

Graph build_graph(const GraphSpec& spec);
// config_path: the file the config came from (Gloo ranks reload it).
StudyResult run_study(const StudyConfig& config, const std::string& config_path,
                      const Progress& progress);
bool verification_enabled(const StudyConfig& config, int64_t num_edges);
// Body of `graphshard study-rank CONFIG W RESULT verify|no-verify SCHEME EXCHANGE`, run by each
// Gloo process.
int run_study_rank(const std::string& config_path, int world, const std::string& result_path,
                   bool do_verify, const std::string& scheme, const std::string& src_exchange);

nlohmann::json rank_metrics_to_json(const RankMetrics& m);
RankMetrics rank_metrics_from_json(const nlohmann::json& j);

void print_table(const StudyResult& result);
void write_results(const StudyResult& result, const std::string& out_dir);

}  // namespace graphshard::study
