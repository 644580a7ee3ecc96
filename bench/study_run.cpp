#include "study_run.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "counting_comm.h"
#include "graphshard/graph.h"
#include "graphshard/launch.h"
#include "graphshard/primitives.h"
#include "sim.h"
#include "study_layer.h"

namespace graphshard::study {
namespace {

using Clock = std::chrono::steady_clock;

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

int64_t peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<int64_t>(u.ru_maxrss) * 1024;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
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

int64_t bytes_of(const at::Tensor& t) {
  return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0;
}

at::Tensor seeded(std::vector<int64_t> shape, at::ScalarType dtype, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, gen, at::TensorOptions().dtype(at::kDouble)).to(dtype);
}

// Whole-world inputs of one study, built once per world size (same values for every W).
struct Inputs {
  at::Tensor x_src, x_dst, edge_attr, edge_index, upstream;
  LayerWeights weights;
};

Inputs make_inputs(const Graph& g, const StudyConfig& c, at::ScalarType dtype) {
  Inputs in;
  in.x_src = seeded({g.num_src, c.channels}, dtype, 1);
  in.x_dst = seeded({g.num_dst, c.channels}, dtype, 2);
  // Edge attributes: the graph's own (geometric, or loaded) projected to edge_channels with a
  // fixed matrix, so every graph kind offers the configured width.
  const at::Tensor base = g.edge_attr.defined() ? g.edge_attr.reshape({g.edge_attr.size(0), -1})
                                                : at::ones({g.edge_index.size(1), 1});
  in.edge_attr = base.to(at::kDouble)
                     .matmul(seeded({base.size(1), c.edge_channels}, at::kDouble, 3))
                     .to(dtype);
  in.edge_index = g.edge_index;
  in.upstream = seeded({g.num_dst, c.channels}, dtype, 4);
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.channels));
  in.weights = LayerWeights{seeded({c.channels, c.channels}, dtype, 5) * scale,
                            seeded({c.edge_channels, c.channels}, dtype, 6) * scale,
                            seeded({c.channels, c.channels}, dtype, 7) * scale};
  return in;
}

struct RankInputs {
  at::Tensor x_src, x_dst;
  BipartiteGraphShardInfo info;
};

// What rank r holds before the layer, as a model holds it: node features sharded (balanced)
// or replicated as configured, edges replicated as graph providers deliver them.
RankInputs rank_inputs(const Inputs& in, const StudyConfig& c, int world, int r) {
  RankInputs ri;
  ShardSizes src_sizes, dst_sizes;
  ri.x_src = in.x_src;
  ri.x_dst = in.x_dst;
  if (c.src_sharded) {
    src_sizes = balanced_sizes(in.x_src.size(0), world);
    const auto [lo, hi] = partition_range(*src_sizes, r);
    ri.x_src = in.x_src.narrow(0, lo, hi - lo);
  }
  if (c.dst_sharded) {
    dst_sizes = balanced_sizes(in.x_dst.size(0), world);
    const auto [lo, hi] = partition_range(*dst_sizes, r);
    ri.x_dst = in.x_dst.narrow(0, lo, hi - lo);
  }
  ri.x_src = ri.x_src.detach().clone().requires_grad_(true);
  ri.x_dst = ri.x_dst.detach().clone().requires_grad_(true);
  ri.info = BipartiteGraphShardInfo(src_sizes, dst_sizes, std::nullopt);
  return ri;
}

// The unsharded layer in float64 with its gradients: what every sharded run must reproduce.
struct Reference {
  Inputs in;  // float64
  at::Tensor out, grad_x_src, grad_x_dst, grad_edge_attr, grad_w_src, grad_w_edge, grad_w_dst;
};

Reference make_reference(const Graph& g, const StudyConfig& c) {
  Reference ref;
  ref.in = make_inputs(g, c, at::kDouble);
  const Inputs& in = ref.in;
  const at::Tensor xs = in.x_src.clone().requires_grad_(true);
  const at::Tensor xd = in.x_dst.clone().requires_grad_(true);
  const at::Tensor ea = in.edge_attr.clone().requires_grad_(true);
  LayerWeights w{in.weights.w_src.clone().requires_grad_(true),
                 in.weights.w_edge.clone().requires_grad_(true),
                 in.weights.w_dst.clone().requires_grad_(true)};
  ref.out = message_passing(xs, xd, ea, g.edge_index, w);
  (ref.out * in.upstream).sum().backward();
  ref.out = ref.out.detach();
  ref.grad_x_src = xs.grad();
  ref.grad_x_dst = xd.grad();
  ref.grad_edge_attr = ea.grad();
  ref.grad_w_src = w.w_src.grad();
  ref.grad_w_edge = w.w_edge.grad();
  ref.grad_w_dst = w.w_dst.grad();
  return ref;
}

// One rank's check of the sharded layer against the unsharded one (float64): output (gathered),
// gradients of the node features (this rank's piece), of the edge attributes and of the weights
// (summed over ranks: replicated weights receive partial gradients). Returns "" or what differs.
// Every rank runs the same collectives whatever it finds, so none is left waiting.
std::string verify_rank(const StudyConfig& c, const GraphPartition& partition, const Reference& ref,
                        int world, const CommPtr& comm) {
  const int r = comm->rank();
  const Inputs& in = ref.in;
  std::string failure;
  auto check = [&](const at::Tensor& a, const at::Tensor& b, const std::string& what) {
    const bool ok = a.defined() && a.sizes() == b.sizes() && at::allclose(a, b, 1e-9, 1e-9);
    if (!ok && failure.empty()) failure = what + " differs on rank " + std::to_string(r);
  };
  RankInputs ri = rank_inputs(in, c, world, r);
  const at::Tensor edge_attr = in.edge_attr.clone().requires_grad_(true);
  LayerWeights w{in.weights.w_src.clone().requires_grad_(true),
                 in.weights.w_edge.clone().requires_grad_(true),
                 in.weights.w_dst.clone().requires_grad_(true)};
  const LocalGraph local = shard_graph_to_local(partition, {ri.x_src, ri.x_dst}, edge_attr,
                                                in.edge_index, ri.info, comm);
  const at::Tensor out =
      message_passing(local.x_src, local.x_dst, local.edge_attr, local.edge_index, w);
  const auto [lo, hi] = partition_range(partition.dst_splits, r);
  check(gather_tensor(out, 0, partition.dst_splits, comm), ref.out, "output");
  (out * in.upstream.narrow(0, lo, hi - lo)).sum().backward();
  auto piece = [&](const at::Tensor& full, const ShardSizes& sizes) {
    if (!sizes) return full;
    const auto [a, b] = partition_range(*sizes, r);
    return full.narrow(0, a, b - a);
  };
  check(ri.x_src.grad(), piece(ref.grad_x_src, ri.info.src_nodes()), "x_src grad");
  check(ri.x_dst.grad(), piece(ref.grad_x_dst, ri.info.dst_nodes()), "x_dst grad");
  check(edge_attr.grad(), ref.grad_edge_attr, "edge_attr grad");
  const std::pair<at::Tensor, at::Tensor> weights[] = {{w.w_src.grad(), ref.grad_w_src},
                                                       {w.w_edge.grad(), ref.grad_w_edge},
                                                       {w.w_dst.grad(), ref.grad_w_dst}};
  const char* names[] = {"w_src grad (summed over ranks)", "w_edge grad (summed over ranks)",
                         "w_dst grad (summed over ranks)"};
  for (int i = 0; i < 3; ++i) {
    at::Tensor sum =
        weights[i].first.defined() ? weights[i].first.clone() : at::zeros_like(weights[i].second);
    comm->all_reduce_sum(sum.view({-1}));  // in place through a 1-D view of `sum`
    check(sum, weights[i].second, names[i]);
  }
  return failure;
}

// One rank's timed passes: warm-up and repeats of (shard_graph_to_local, layer forward,
// backward), each stage started together (barrier) and timed on this rank (wall and thread CPU).
RankMetrics measure_rank(const StudyConfig& c, const GraphPartition& partition, const Inputs& in,
                         int world, CountingCommunicator& comm_ref, const CommPtr& comm) {
  const int r = comm->rank();
  RankMetrics m;
  m.rank = r;
  const std::vector<std::string> stages{"shard_graph_to_local", "layer_forward", "backward"};
  std::map<std::string, std::vector<double>> wall, cpu;
  for (int rep = 0; rep < c.warmup + c.repeats; ++rep) {
    comm_ref.reset();
    RankInputs ri = rank_inputs(in, c, world, r);
    const at::Tensor edge_attr = in.edge_attr.detach().clone().requires_grad_(true);
    LayerWeights lw{in.weights.w_src.clone().requires_grad_(true),
                    in.weights.w_edge.clone().requires_grad_(true),
                    in.weights.w_dst.clone().requires_grad_(true)};
    LocalGraph local;
    at::Tensor out;
    for (const auto& stage : stages) {
      comm->barrier();
      const auto t0 = Clock::now();
      const double c0 = thread_cpu_seconds();
      if (stage == "shard_graph_to_local") {
        local = shard_graph_to_local(partition, {ri.x_src, ri.x_dst}, edge_attr, in.edge_index,
                                     ri.info, comm);
      } else if (stage == "layer_forward") {
        out = message_passing(local.x_src, local.x_dst, local.edge_attr, local.edge_index, lw);
      } else {
        const auto [lo, hi] = partition_range(partition.dst_splits, r);
        (out * in.upstream.narrow(0, lo, hi - lo)).sum().backward();
      }
      if (rep >= c.warmup) {
        wall[stage].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
        cpu[stage].push_back(thread_cpu_seconds() - c0);
      }
    }
    if (rep + 1 == c.warmup + c.repeats) {
      m.dst_nodes = local.x_dst.size(0);
      m.edges = local.edge_index.size(1);
      // The sources this rank's edges use (at W = 1 the layer holds all sources, SPEC §3).
      m.halo_src_nodes = std::get<0>(at::_unique(local.edge_index[0])).numel();
      m.local_bytes = bytes_of(local.x_src) + bytes_of(local.x_dst) + bytes_of(local.edge_attr) +
                      bytes_of(local.edge_index);
      for (const auto& [op, t] : comm_ref.traffic()) {
        if (op == "barrier") continue;
        m.bytes_sent[op] = t.bytes_sent;
        m.bytes_received[op] = t.bytes_received;
      }
    }
  }
  for (const auto& s : stages) {
    m.seconds[s] = median(wall[s]);
    m.cpu_seconds[s] = median(cpu[s]);
  }
  return m;
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

int run_study_rank(const std::string& config_path, int world, const std::string& result_path,
                   bool do_verify) {
  const StudyConfig c = load_study_config(config_path);
  const CommPtr gloo = communicator_from_env("gloo", std::chrono::minutes(10));
  TORCH_CHECK_VALUE(gloo->size() == world, "graphshard study-rank: WORLD_SIZE: expected ", world,
                    ", got ", gloo->size());
  auto comm = std::make_shared<CountingCommunicator>(gloo);
  const Graph g = build_graph(c.graph);
  const GraphPartition partition =
      build_graph_partition(g.edge_index, world, {g.num_src, g.num_dst});
  const RankMetrics m = measure_rank(c, partition, make_inputs(g, c, c.dtype), world, *comm, comm);
  std::string failure;
  if (do_verify) failure = verify_rank(c, partition, make_reference(g, c), world, gloo);
  // Every rank's metrics and verdict to rank 0, as JSON text.
  nlohmann::json mine = rank_metrics_to_json(m);
  mine["failure"] = failure;
  const std::string text = mine.dump();
  at::Tensor len = at::full({1}, static_cast<int64_t>(text.size()), at::kLong);
  at::Tensor lens = at::empty({world}, at::kLong);
  gloo->all_gather_v(len, lens, std::vector<int64_t>(world, 1));
  std::vector<int64_t> counts(lens.data_ptr<int64_t>(), lens.data_ptr<int64_t>() + world);
  at::Tensor bytes = at::empty({static_cast<int64_t>(text.size())}, at::kByte);
  std::memcpy(bytes.data_ptr(), text.data(), text.size());
  at::Tensor all = at::empty({total(counts)}, at::kByte);
  gloo->all_gather_v(bytes, all, counts);
  if (gloo->rank() == 0) {
    nlohmann::json out;
    out["ranks"] = nlohmann::json::array();
    std::string first_failure;
    int64_t off = 0;
    for (int q = 0; q < world; ++q) {
      const auto jr = nlohmann::json::parse(std::string(
          reinterpret_cast<const char*>(all.data_ptr()) + off, static_cast<size_t>(counts[q])));
      off += counts[q];
      if (first_failure.empty()) first_failure = jr.at("failure").get<std::string>();
      out["ranks"].push_back(jr);
    }
    out["verified"] = do_verify ? nlohmann::json(first_failure.empty()) : nlohmann::json(nullptr);
    out["verify_detail"] =
        first_failure.empty() ? "forward and all gradients match" : first_failure;
    std::ofstream(result_path) << out.dump();
  }
  gloo->barrier();
  return 0;
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
