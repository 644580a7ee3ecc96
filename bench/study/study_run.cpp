// The study runner: builds the study's graph, runs every world size (plan only, sim ranks in this
// process, or Gloo rank processes) and summarises each world's rank metrics. What one rank does
// is in study_rank.cpp.
#include "study_run.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "counting_comm.h"
#include "graphshard/graph.h"
#include "graphshard/launch.h"
#include "graphshard/primitives.h"
#include "sim.h"
#include "study_run_internal.h"

namespace graphshard::study {

using detail::Clock;
using detail::Inputs;
using detail::make_inputs;
using detail::make_reference;
using detail::measure_rank;
using detail::Reference;
using detail::verify_rank;

namespace {

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

template <typename F>
double imbalance(const std::vector<RankMetrics>& ranks, F&& get) {
  double mx = 0, sum = 0;
  for (const auto& r : ranks) {
    const auto v = static_cast<double>(get(r));
    mx = std::max(mx, v);
    sum += v;
  }
  return sum > 0 ? mx / (sum / static_cast<double>(ranks.size())) : 1.0;
}

void finish_world(WorldResult& w, int64_t feature_row_bytes) {
  w.dst_nodes_imbalance = imbalance(w.ranks, [](const RankMetrics& r) { return r.dst_nodes; });
  w.edges_imbalance = imbalance(w.ranks, [](const RankMetrics& r) { return r.edges; });
  w.halo_imbalance = imbalance(w.ranks, [](const RankMetrics& r) { return r.halo_src_nodes; });
  for (const auto& r : w.ranks) {
    int64_t sent = 0;
    for (const auto& [op, b] : r.bytes_sent) sent += b;
    w.total_bytes_sent += sent;
    w.max_rank_bytes_sent = std::max(w.max_rank_bytes_sent, sent);
    w.halo_bytes_max = std::max(w.halo_bytes_max, r.halo_src_nodes * feature_row_bytes);
  }
  w.peak_rss_bytes = peak_rss_bytes();
}

WorldResult plan_world(const Graph& g, const StudyConfig& c, int world) {
  WorldResult w;
  w.world_size = world;
  const GraphPartition partition =
      build_graph_partition(g.edge_index, world, {g.num_src, g.num_dst});
  // Zero-width features: materialise computes the halo (used sources) without feature data.
  const at::Tensor xs = at::empty({g.num_src, 0}), xd = at::empty({g.num_dst, 0});
  const at::Tensor ea = at::empty({g.edge_index.size(1), 0});
  const int64_t row = c.channels * static_cast<int64_t>(c10::elementSize(c.dtype));
  const auto src_sizes = balanced_sizes(g.num_src, world);
  for (int r = 0; r < world; ++r) {
    const auto part = partition.materialise(r, {xs, xd}, ea, g.edge_index);
    RankMetrics m;
    m.rank = r;
    m.dst_nodes = partition.dst_splits[r];
    m.edges = partition.edge_splits[r];
    m.halo_src_nodes = part.src_ids.numel();
    m.local_bytes =
        (m.halo_src_nodes + m.dst_nodes) * row +
        m.edges * (c.edge_channels * static_cast<int64_t>(c10::elementSize(c.dtype)) + 2 * 8);
    // What shard_graph_to_local's all-gather of sharded source features moves for this rank.
    if (world > 1 && c.src_sharded) {
      m.bytes_sent["all_gather_v (estimate)"] = src_sizes[r] * row * (world - 1);
      m.bytes_received["all_gather_v (estimate)"] = (g.num_src - src_sizes[r]) * row;
    }
    w.ranks.push_back(std::move(m));
  }
  finish_world(w, row);
  return w;
}

// Stage maxima, critical path and the derived metrics of a world whose ranks are measured.
void summarise_run(WorldResult& w, const StudyConfig& c) {
  for (const auto& [stage, t] : w.ranks.front().seconds) {
    double mx = 0;
    for (const auto& r : w.ranks) mx = std::max(mx, r.seconds.at(stage));
    w.stage_seconds[stage] = mx;
    w.step_seconds += mx;
  }
  for (const auto& r : w.ranks) {
    double cpu = 0;
    for (const auto& [s, t] : r.cpu_seconds) cpu += t;
    w.critical_path_cpu_seconds = std::max(w.critical_path_cpu_seconds, cpu);
  }
  finish_world(w, c.channels * static_cast<int64_t>(c10::elementSize(c.dtype)));
}

WorldResult run_world_sim(const Graph& g, const StudyConfig& c, int world, const Reference* ref) {
  WorldResult w;
  w.world_size = world;
  const GraphPartition partition =
      build_graph_partition(g.edge_index, world, {g.num_src, g.num_dst});
  const Inputs in = make_inputs(g, c, c.dtype);
  w.ranks.resize(world);
  const auto outcomes = sim::run_ranks_collect(
      sim::SimWorld::create(world, std::chrono::minutes(10)), [&](const CommPtr& inner) {
        auto comm = std::make_shared<CountingCommunicator>(inner);
        w.ranks[comm->rank()] = measure_rank(c, partition, in, world, *comm, comm);
      });
  for (const auto& o : outcomes) {
    TORCH_CHECK(o.ok, "graphshard study: W=", world, ": a rank failed: ", o.error);
  }
  summarise_run(w, c);
  if (ref) {
    std::mutex m;
    std::string failure;
    sim::run_ranks(world, [&](const CommPtr& comm) {
      const std::string f = verify_rank(c, partition, *ref, world, comm);
      std::lock_guard<std::mutex> lk(m);
      if (failure.empty()) failure = f;
    });
    w.verified = failure.empty();
    w.verify_detail = failure.empty() ? "forward and all gradients match" : failure;
  }
  return w;
}

// Gloo: W processes of this executable (`graphshard study-rank`), each measuring its rank;
// rank 0 writes every rank's metrics to a file this process reads back.
WorldResult run_world_gloo(const StudyConfig& c, const std::string& config_path, int world,
                           bool do_verify) {
  const std::string result =
      std::filesystem::temp_directory_path() /
      ("graphshard-study-" + std::to_string(::getpid()) + "-W" + std::to_string(world) + ".json");
  // The ranks re-execute this program: only the `graphshard` executable has `study-rank`.
  const auto self = std::filesystem::read_symlink("/proc/self/exe");
  TORCH_CHECK_VALUE(self.filename() == "graphshard", "graphshard study: engine: expected \"gloo\" ",
                    "to run from the graphshard executable, got ", self.string(),
                    " (use engine \"sim\" in-process)");
  LaunchOptions o;
  o.world_size = world;
  o.timeout = std::chrono::minutes(30);
  const int rc = launch_local({"/proc/self/exe", "study-rank", config_path, std::to_string(world),
                               result, do_verify ? "verify" : "no-verify"},
                              o);
  TORCH_CHECK(rc == 0, "graphshard study: W=", world, ": the Gloo ranks failed (exit code ", rc,
              "); their output is above");
  std::ifstream f(result);
  TORCH_CHECK(f, "graphshard study: W=", world, ": rank 0 wrote no results to ", result);
  const auto j = nlohmann::json::parse(f);
  std::filesystem::remove(result);
  WorldResult w;
  w.world_size = world;
  for (const auto& jr : j.at("ranks")) w.ranks.push_back(rank_metrics_from_json(jr));
  summarise_run(w, c);
  if (!j.at("verified").is_null()) {
    w.verified = j.at("verified").get<bool>();
    w.verify_detail = j.at("verify_detail").get<std::string>();
  }
  return w;
}

}  // namespace

Graph build_graph(const GraphSpec& s) {
  Graph g;
  if (s.kind == "encoder" || s.kind == "decoder") {
    const Nodes grid = octahedral_grid(s.grid_n);
    const Nodes mesh = icosahedral_nodes(s.mesh_refinement);
    const std::string name = "O" + std::to_string(s.grid_n) +
                             (s.kind == "encoder" ? " -> " : " <- ") + "icosahedral r" +
                             std::to_string(s.mesh_refinement);
    if (s.kind == "encoder") {
      g = s.knn > 0
              ? knn_edges(grid, mesh, s.knn, "encoder " + name + ", knn " + std::to_string(s.knn))
              : radius_edges(grid, mesh, s.radius_factor * typical_spacing(mesh.size()),
                             "encoder " + name);
      g.edge_attr = geometric_edge_attr(grid, mesh, g.edge_index);
    } else {
      g = knn_edges(mesh, grid, s.knn, "decoder " + name + ", knn " + std::to_string(s.knn));
      g.edge_attr = geometric_edge_attr(mesh, grid, g.edge_index);
    }
  } else if (s.kind == "processor") {
    g = icosahedral_multiscale_edges(s.mesh_refinement);
    const Nodes mesh = icosahedral_nodes(s.mesh_refinement);
    g.edge_attr = geometric_edge_attr(mesh, mesh, g.edge_index);
  } else if (s.kind == "random") {
    g = random_bipartite(s.num_src, s.num_dst, s.avg_degree, s.seed);
  } else {
    g = load_safetensors_graph(s.path);
    if (!is_edge_index_dst_sorted(g.edge_index)) {
      auto [sorted, perm] = sort_edge_index_by_dst(g.edge_index);
      g.edge_index = sorted;
      if (g.edge_attr.defined()) g.edge_attr = g.edge_attr.index_select(0, perm);
    }
  }
  return g;
}

bool verification_enabled(const StudyConfig& c, int64_t num_edges) {
  // The unsharded float64 layer runs once per study: on by default up to a million edges.
  return !c.plan_only && c.verify.value_or(num_edges <= 1000000);
}

StudyResult run_study(const StudyConfig& c, const std::string& config_path,
                      const Progress& progress) {
  StudyResult res;
  res.config = c;
  progress("building graph (" + c.graph.kind + ")");
  const auto t0 = Clock::now();
  const Graph g = build_graph(c.graph);
  res.graph_build_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  res.graph_name = g.name;
  res.num_src = g.num_src;
  res.num_dst = g.num_dst;
  res.num_edges = g.edge_index.size(1);
  progress(g.name + ": " + std::to_string(g.num_src) + " src, " + std::to_string(g.num_dst) +
           " dst, " + std::to_string(res.num_edges) + " edges, built in " +
           std::to_string(res.graph_build_seconds).substr(0, 5) + " s");
  const bool do_verify = verification_enabled(c, res.num_edges);
  std::optional<Reference> ref;
  if (do_verify && c.engine == "sim") ref = make_reference(g, c);
  for (size_t i = 0; i < c.world_sizes.size(); ++i) {
    const int world = c.world_sizes[i];
    progress("[" + std::to_string(i + 1) + "/" + std::to_string(c.world_sizes.size()) +
             "] W=" + std::to_string(world) + (c.plan_only ? " (plan only)" : " on " + c.engine));
    if (c.plan_only) {
      res.worlds.push_back(plan_world(g, c, world));
    } else if (c.engine == "gloo") {
      res.worlds.push_back(run_world_gloo(c, config_path, world, do_verify));
    } else {
      res.worlds.push_back(run_world_sim(g, c, world, ref ? &*ref : nullptr));
    }
  }
  double t1 = 0;
  for (const auto& w : res.worlds)
    if (w.world_size == 1) t1 = w.critical_path_cpu_seconds;
  for (auto& w : res.worlds) {
    if (t1 > 0 && w.critical_path_cpu_seconds > 0) {
      w.parallel_efficiency = t1 / (w.world_size * w.critical_path_cpu_seconds);
    }
  }
  return res;
}

}  // namespace graphshard::study
