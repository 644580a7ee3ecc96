// Terminal table, results.json and results.csv of a study.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "study_run.h"

namespace graphshard::study {
namespace {

int64_t max_of(const WorldResult& w, int64_t RankMetrics::*field) {
  int64_t m = 0;
  for (const auto& r : w.ranks) m = std::max(m, r.*field);
  return m;
}

// The variant columns: shown when the study has more than one or not the default one.
bool show_variant(const StudyConfig& c) {
  return c.num_variants() > 1 || c.schemes.front() != "contiguous" ||
         c.src_exchanges.front() != "all_gather";
}

std::string verified_str(const WorldResult& w) {
  return w.verified ? (*w.verified ? "yes" : "NO") : "-";
}

}  // namespace

nlohmann::json rank_metrics_to_json(const RankMetrics& r) {
  return {{"rank", r.rank},
          {"dst_nodes", r.dst_nodes},
          {"edges", r.edges},
          {"halo_src_nodes", r.halo_src_nodes},
          {"local_bytes", r.local_bytes},
          {"bytes_sent", r.bytes_sent},
          {"bytes_received", r.bytes_received},
          {"bytes_sent_by_stage", r.bytes_sent_by_stage},
          {"seconds", r.seconds},
          {"cpu_seconds", r.cpu_seconds}};
}

RankMetrics rank_metrics_from_json(const nlohmann::json& j) {
  RankMetrics r;
  r.rank = j.at("rank").get<int>();
  r.dst_nodes = j.at("dst_nodes").get<int64_t>();
  r.edges = j.at("edges").get<int64_t>();
  r.halo_src_nodes = j.at("halo_src_nodes").get<int64_t>();
  r.local_bytes = j.at("local_bytes").get<int64_t>();
  r.bytes_sent = j.at("bytes_sent").get<std::map<std::string, int64_t>>();
  r.bytes_received = j.at("bytes_received").get<std::map<std::string, int64_t>>();
  r.bytes_sent_by_stage =
      j.value("bytes_sent_by_stage", std::map<std::string, int64_t>{});
  r.seconds = j.at("seconds").get<std::map<std::string, double>>();
  r.cpu_seconds = j.at("cpu_seconds").get<std::map<std::string, double>>();
  return r;
}

void print_table(const StudyResult& res) {
  const auto& c = res.config;
  std::printf(
      "\nstudy %s: %s\n  %lld src nodes, %lld dst nodes, %lld edges; %lld channels of %s;"
      " src %s, dst %s; engine %s%s\n\n",
      c.name.c_str(), res.graph_name.c_str(), static_cast<long long>(res.num_src),
      static_cast<long long>(res.num_dst), static_cast<long long>(res.num_edges),
      static_cast<long long>(c.channels), c10::toString(c.dtype),
      c.src_sharded ? "sharded" : "replicated", c.dst_sharded ? "sharded" : "replicated",
      c.engine.c_str(), c.plan_only ? " (plan only: no features run)" : "");
  const bool variant = show_variant(c);
  if (variant) std::printf("%-13s %-10s ", "scheme", "exchange");
  std::printf("%6s %10s %10s %10s %8s %8s %8s %12s %12s", "W", "dst/rank", "edges/rank",
              "halo/rank", "imb.node", "imb.edge", "imb.halo", "MiB sent", "halo MiB");
  if (!c.plan_only) std::printf(" %10s %10s %6s %8s", "ms/step", "crit.CPU", "eff.", "verified");
  std::printf("\n");
  for (size_t i = 0; i < res.worlds.size(); ++i) {
    const auto& w = res.worlds[i];
    if (variant && i > 0 && w.world_size <= res.worlds[i - 1].world_size) std::printf("\n");
    if (variant) std::printf("%-13s %-10s ", w.scheme.c_str(), w.src_exchange.c_str());
    std::printf("%6d %10lld %10lld %10lld %8.3f %8.3f %8.3f %12.3f %12.3f", w.world_size,
                static_cast<long long>(max_of(w, &RankMetrics::dst_nodes)),
                static_cast<long long>(max_of(w, &RankMetrics::edges)),
                static_cast<long long>(max_of(w, &RankMetrics::halo_src_nodes)),
                w.dst_nodes_imbalance, w.edges_imbalance, w.halo_imbalance,
                w.max_rank_bytes_sent / 1048576.0, w.halo_bytes_max / 1048576.0);
    if (!c.plan_only) {
      std::printf(" %10.2f %10.2f %6.2f %8s", w.step_seconds * 1e3,
                  w.critical_path_cpu_seconds * 1e3, w.parallel_efficiency,
                  verified_str(w).c_str());
    }
    std::printf("\n");
  }
  std::printf(
      "\n  dst/edges/halo per rank: maximum over ranks; imb.: max/mean over ranks; MiB sent: the "
      "busiest rank, one step%s; halo MiB: the source feature rows a rank's edges use, its "
      "own included (a halo exchange moves those it does not own).\n",
      c.plan_only ? " (estimate: the source exchange of sharded source features, forward and "
                    "backward)"
                  : "");
  if (!c.plan_only) {
    std::printf(
        "  ms/step: forward + backward, max over ranks of the median of %d repeats (the W "
        "ranks share this machine's cores); crit.CPU: the busiest rank's thread CPU time, the "
        "step time with a core per rank; eff.: crit.CPU(W=1) / (W * crit.CPU(W)).\n",
        c.repeats);
    for (const auto& w : res.worlds)
      if (w.verified)
        std::printf("  W=%d%s verified against the unsharded layer (float64): %s\n",
                    w.world_size,
                    variant ? (" (" + w.scheme + ", " + w.src_exchange + ")").c_str() : "",
                    w.verify_detail.c_str());
  }
}

void write_results(const StudyResult& res, const std::string& out_dir) {
  std::filesystem::create_directories(out_dir);
  using json = nlohmann::json;
  const auto& c = res.config;
  json j;
  j["name"] = c.name;
  j["graph"] = {{"name", res.graph_name},     {"kind", c.graph.kind},
                {"num_src", res.num_src},     {"num_dst", res.num_dst},
                {"num_edges", res.num_edges}, {"build_seconds", res.graph_build_seconds}};
  j["engine"] = c.engine;
  j["plan_only"] = c.plan_only;
  j["channels"] = c.channels;
  j["edge_channels"] = c.edge_channels;
  j["dtype"] = c10::toString(c.dtype);
  j["src"] = c.src_sharded ? "sharded" : "replicated";
  j["dst"] = c.dst_sharded ? "sharded" : "replicated";
  j["repeats"] = c.repeats;
  j["partition"] = {{"schemes", c.schemes}, {"seed", c.partition_seed}};
  j["src_exchanges"] = c.src_exchanges;
  j["world_sizes"] = json::array();
  for (const auto& w : res.worlds) {
    json jw;
    jw["world_size"] = w.world_size;
    jw["scheme"] = w.scheme;
    jw["src_exchange"] = w.src_exchange;
    jw["dst_nodes_imbalance"] = w.dst_nodes_imbalance;
    jw["edges_imbalance"] = w.edges_imbalance;
    jw["halo_imbalance"] = w.halo_imbalance;
    jw["total_bytes_sent"] = w.total_bytes_sent;
    jw["max_rank_bytes_sent"] = w.max_rank_bytes_sent;
    jw["halo_bytes_max"] = w.halo_bytes_max;
    jw["stage_seconds"] = w.stage_seconds;
    jw["step_seconds"] = w.step_seconds;
    jw["critical_path_cpu_seconds"] = w.critical_path_cpu_seconds;
    jw["parallel_efficiency"] = w.parallel_efficiency;
    jw["peak_rss_bytes"] = w.peak_rss_bytes;
    jw["verified"] = w.verified ? json(*w.verified) : json(nullptr);
    jw["verify_detail"] = w.verify_detail;
    jw["per_rank"] = json::array();
    for (const auto& r : w.ranks) jw["per_rank"].push_back(rank_metrics_to_json(r));
    j["world_sizes"].push_back(jw);
  }
  std::ofstream(out_dir + "/results.json") << j.dump(1) << "\n";
  std::ofstream csv(out_dir + "/results.csv");
  csv << "world_size,max_dst_nodes,max_edges,max_halo_src_nodes,dst_nodes_imbalance,"
         "edges_imbalance,halo_imbalance,total_bytes_sent,max_rank_bytes_sent,halo_bytes_max,"
         "step_seconds,critical_path_cpu_seconds,parallel_efficiency,peak_rss_bytes,verified,"
         "scheme,src_exchange\n";
  for (const auto& w : res.worlds) {
    csv << w.world_size << ',' << max_of(w, &RankMetrics::dst_nodes) << ','
        << max_of(w, &RankMetrics::edges) << ',' << max_of(w, &RankMetrics::halo_src_nodes) << ','
        << w.dst_nodes_imbalance << ',' << w.edges_imbalance << ',' << w.halo_imbalance << ','
        << w.total_bytes_sent << ',' << w.max_rank_bytes_sent << ',' << w.halo_bytes_max << ','
        << w.step_seconds << ',' << w.critical_path_cpu_seconds << ',' << w.parallel_efficiency
        << ',' << w.peak_rss_bytes << ',' << (w.verified ? (*w.verified ? "true" : "false") : "")
        << ',' << w.scheme << ',' << w.src_exchange << '\n';
  }
}

}  // namespace graphshard::study
