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
#include <numeric>
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
using detail::permute_inputs;
using detail::permute_reference;
using detail::plan_partition;
using detail::Reference;
using detail::verify_rank;
using detail::WorldPlan;

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

WorldResult labelled(const WorldPlan& p) {
  WorldResult w;
  w.world_size = p.world;
  w.scheme = p.scheme;
  w.src_exchange = p.src_exchange;
  return w;
}

// A plan's metrics of every rank (no features) and the halo rows between ranks, whichever
// exchange then moves the sources (plan_exchange).
struct PlannedWorld {
  WorldResult w;
  std::vector<int64_t> halo_in, halo_out;  // rows each rank receives / sends, forward
};

PlannedWorld plan_world(const Graph& g, const StudyConfig& c, const WorldPlan& p) {
  PlannedWorld out;
  WorldResult& w = out.w;
  w = labelled(p);
  const int world = p.world;
  const int64_t row = c.channels * static_cast<int64_t>(c10::elementSize(c.dtype));
  // Rank q owns sources range(src_splits, q): the owner of a source is the number of range ends
  // at or below its id.
  std::vector<int64_t> ends(world);
  std::partial_sum(p.src_splits.begin(), p.src_splits.end(), ends.begin());
  const at::Tensor range_ends = at::tensor(ends, at::kLong);
  std::vector<int64_t>& halo_in = out.halo_in;
  std::vector<int64_t>& halo_out = out.halo_out;
  halo_in.assign(world, 0);
  halo_out.assign(world, 0);
  const at::Tensor sources = p.edge_index[0];
  for (int r = 0; r < world; ++r) {
    // The distinct sources of the rank's edges (what materialise keeps), from its edge range
    // alone: O(E) over all ranks where a mark array over every source per rank is O(W n_src).
    const auto [elo, ehi] = partition_range(p.partition.edge_splits, r);
    const at::Tensor src_ids = std::get<0>(at::_unique(sources.narrow(0, elo, ehi - elo)));
    RankMetrics m;
    m.rank = r;
    m.dst_nodes = p.partition.dst_splits[r];
    m.edges = p.partition.edge_splits[r];
    m.halo_src_nodes = src_ids.numel();
    m.local_bytes =
        (m.halo_src_nodes + m.dst_nodes) * row +
        m.edges * (c.edge_channels * static_cast<int64_t>(c10::elementSize(c.dtype)) + 2 * 8);
    const at::Tensor owners = at::searchsorted(range_ends, src_ids.to(at::kLong), false, true);
    const at::Tensor per_owner = at::bincount(owners, {}, world).contiguous();
    for (int q = 0; q < world; ++q) {
      if (q == r) continue;
      const int64_t rows = per_owner.data_ptr<int64_t>()[q];
      halo_in[r] += rows;
      halo_out[q] += rows;
    }
    w.ranks.push_back(std::move(m));
  }
  return out;
}

// The planned world with what the source exchange of sharded sources moves for each rank,
// forward and backward (estimates: the rows, and the ids a halo exchange requests).
WorldResult plan_exchange(const PlannedWorld& pw, const Graph& g, const StudyConfig& c,
                          const WorldPlan& p) {
  WorldResult w = pw.w;
  w.src_exchange = p.src_exchange;
  const int world = p.world;
  const int64_t row = c.channels * static_cast<int64_t>(c10::elementSize(c.dtype));
  const std::vector<int64_t>& halo_in = pw.halo_in;
  const std::vector<int64_t>& halo_out = pw.halo_out;
  if (world > 1 && c.src_sharded) {
    for (int r = 0; r < world; ++r) {
      RankMetrics& m = w.ranks[r];
      int64_t forward = 0, backward = 0;
      if (p.exchange() == SrcExchange::kAllGather) {
        forward = p.src_splits[r] * row * (world - 1);  // all-gather: its rows to every rank
        backward = (g.num_src - p.src_splits[r]) * row;  // reduce-scatter: the others' rows
        m.bytes_sent["all_gather_v (estimate)"] = forward;
        m.bytes_sent["reduce_scatter_v (estimate)"] = backward;
      } else {
        // The ids it requests (int64), the rows others requested of it; back: its halo's
        // gradient rows.
        forward = halo_in[r] * 8 + halo_out[r] * row;
        backward = halo_in[r] * row;
        m.bytes_sent["all_to_all_v (estimate)"] = forward + backward;
      }
      m.bytes_sent_by_stage["shard_graph_to_local"] = forward;
      m.bytes_sent_by_stage["backward"] = backward;
    }
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

WorldResult run_world_sim(const StudyConfig& c, const WorldPlan& p, const Inputs& base,
                          const Reference* base_ref) {
  WorldResult w = labelled(p);
  const int world = p.world;
  const Inputs in = permute_inputs(base, p);
  w.ranks.resize(world);
  const auto outcomes = sim::run_ranks_collect(
      sim::SimWorld::create(world, std::chrono::minutes(10)), [&](const CommPtr& inner) {
        auto comm = std::make_shared<CountingCommunicator>(inner);
        w.ranks[comm->rank()] = measure_rank(c, p, in, *comm, comm);
      });
  for (const auto& o : outcomes) {
    TORCH_CHECK(o.ok, "graphshard study: W=", world, ": a rank failed: ", o.error);
  }
  summarise_run(w, c);
  if (base_ref) {
    const Reference ref = permute_reference(*base_ref, p);
    std::mutex m;
    std::string failure;
    sim::run_ranks(world, [&](const CommPtr& comm) {
      const std::string f = verify_rank(c, p, ref, comm);
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
WorldResult run_world_gloo(const StudyConfig& c, const std::string& config_path,
                           const WorldPlan& p, bool do_verify) {
  const int world = p.world;
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
                               result, do_verify ? "verify" : "no-verify", p.scheme,
                               p.src_exchange},
                              o);
  TORCH_CHECK(rc == 0, "graphshard study: W=", world, ": the Gloo ranks failed (exit code ", rc,
              "); their output is above");
  std::ifstream f(result);
  TORCH_CHECK(f, "graphshard study: W=", world, ": rank 0 wrote no results to ", result);
  const auto j = nlohmann::json::parse(f);
  std::filesystem::remove(result);
  WorldResult w = labelled(p);
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
      g.dst_xyz = mesh.xyz;
    } else {
      g = knn_edges(mesh, grid, s.knn, "decoder " + name + ", knn " + std::to_string(s.knn));
      g.edge_attr = geometric_edge_attr(mesh, grid, g.edge_index);
      g.dst_xyz = grid.xyz;
    }
  } else if (s.kind == "processor") {
    g = icosahedral_multiscale_edges(s.mesh_refinement);
    const Nodes mesh = icosahedral_nodes(s.mesh_refinement);
    g.edge_attr = geometric_edge_attr(mesh, mesh, g.edge_index);
    g.dst_xyz = mesh.xyz;
    g.plain = true;
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
  const bool in_process = !c.plan_only && c.engine == "sim";
  const Inputs base = in_process ? make_inputs(g, c, c.dtype) : Inputs{};
  std::optional<Reference> ref;
  if (do_verify && in_process) ref = make_reference(g, c);
  // One partition per (scheme, W), shared by the exchanges; results kept variant by variant.
  const size_t num_exchanges = c.src_exchanges.size();
  std::vector<std::vector<WorldResult>> variants(c.num_variants());
  const size_t steps =
      c.schemes.size() * c.world_sizes.size() * (c.plan_only ? 1 : num_exchanges);
  size_t step = 0;
  auto announce = [&](int world, const std::string& what) {
    progress("[" + std::to_string(++step) + "/" + std::to_string(steps) + "] W=" +
             std::to_string(world) + ", " + what);
  };
  for (size_t si = 0; si < c.schemes.size(); ++si) {
    for (const int world : c.world_sizes) {
      WorldPlan plan = plan_partition(g, c, world, c.schemes[si], c.src_exchanges.front());
      if (c.plan_only) {
        announce(world, c.schemes[si] + " (plan only)");
        const PlannedWorld pw = plan_world(g, c, plan);
        for (size_t ei = 0; ei < num_exchanges; ++ei) {
          plan.src_exchange = c.src_exchanges[ei];
          variants[si * num_exchanges + ei].push_back(plan_exchange(pw, g, c, plan));
        }
        continue;
      }
      for (size_t ei = 0; ei < num_exchanges; ++ei) {
        plan.src_exchange = c.src_exchanges[ei];
        announce(world, c.schemes[si] + ", " + plan.src_exchange + " on " + c.engine);
        variants[si * num_exchanges + ei].push_back(
            c.engine == "gloo" ? run_world_gloo(c, config_path, plan, do_verify)
                               : run_world_sim(c, plan, base, ref ? &*ref : nullptr));
      }
    }
  }
  for (auto& worlds : variants) {
    // Parallel efficiency against the variant's own W = 1.
    double t1 = 0;
    for (const auto& w : worlds)
      if (w.world_size == 1) t1 = w.critical_path_cpu_seconds;
    for (auto& w : worlds) {
      if (t1 > 0 && w.critical_path_cpu_seconds > 0) {
        w.parallel_efficiency = t1 / (w.world_size * w.critical_path_cpu_seconds);
      }
      res.worlds.push_back(std::move(w));
    }
  }
  return res;
}

}  // namespace graphshard::study
