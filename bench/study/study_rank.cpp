// One rank's work in a study: its inputs (seeded, the same for every world size), its timed
// passes, its check against the unsharded float64 layer, and the body of a Gloo rank process
// (`graphshard study-rank`). The runner over world sizes is study_run.cpp.
#include "study_run.h"

#include <algorithm>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include "counting_comm.h"
#include "graphshard/graph.h"
#include "graphshard/launch.h"
#include "graphshard/primitives.h"
#include "study_layer.h"
#include "study_run_internal.h"

namespace graphshard::study {

using detail::Inputs;
using detail::make_inputs;
using detail::make_reference;
using detail::measure_rank;
using detail::permute_inputs;
using detail::permute_reference;
using detail::plan_partition;
using detail::verify_rank;
using detail::WorldPlan;

namespace {

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int64_t bytes_of(const at::Tensor& t) {
  return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0;
}

at::Tensor seeded(std::vector<int64_t> shape, at::ScalarType dtype, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  return at::randn(shape, gen, at::TensorOptions().dtype(at::kDouble)).to(dtype);
}

struct RankInputs {
  at::Tensor x_src, x_dst;
  BipartiteGraphShardInfo info;
};

// What rank r holds before the layer, as a model holds it: node features sharded (by the
// plan's parts: balanced ranges for contiguous) or replicated as configured, edges replicated as
// graph providers deliver them.
RankInputs rank_inputs(const Inputs& in, const StudyConfig& c, const WorldPlan& plan, int r) {
  RankInputs ri;
  ShardSizes src_sizes, dst_sizes;
  ri.x_src = in.x_src;
  ri.x_dst = in.x_dst;
  if (c.src_sharded) {
    src_sizes = plan.src_splits;
    const auto [lo, hi] = partition_range(*src_sizes, r);
    ri.x_src = in.x_src.narrow(0, lo, hi - lo);
  }
  if (c.dst_sharded) {
    dst_sizes = plan.partition.dst_splits;
    const auto [lo, hi] = partition_range(*dst_sizes, r);
    ri.x_dst = in.x_dst.narrow(0, lo, hi - lo);
  }
  ri.x_src = ri.x_src.detach().clone().requires_grad_(true);
  ri.x_dst = ri.x_dst.detach().clone().requires_grad_(true);
  ri.info = BipartiteGraphShardInfo(src_sizes, dst_sizes, std::nullopt);
  return ri;
}

int64_t bytes_sent_so_far(CountingCommunicator& comm_ref) {
  int64_t sent = 0;
  for (const auto& [op, t] : comm_ref.traffic())
    if (op != "barrier") sent += t.bytes_sent;
  return sent;
}

}  // namespace

namespace detail {

WorldPlan plan_partition(const Graph& g, const StudyConfig& c, int world, const std::string& scheme,
                         const std::string& src_exchange) {
  PartitionOptions o;
  o.scheme = partition_scheme_from_string(scheme);
  o.plain = g.plain;
  o.dst_coords = g.dst_xyz;
  o.seed = c.partition_seed;
  RenumberedGraph r = partition_graph(g.edge_index, {g.num_src, g.num_dst}, world, o);
  WorldPlan p;
  p.world = world;
  p.scheme = scheme;
  p.src_exchange = src_exchange;
  p.partition = std::move(r.partition);
  p.src_splits = std::move(r.src_splits);
  p.edge_index = r.edge_index;
  p.src_perm = r.src_perm;
  p.dst_perm = r.dst_perm;
  p.edge_perm = r.edge_perm;
  return p;
}

Inputs permute_inputs(const Inputs& in, const WorldPlan& p) {
  Inputs out;
  out.x_src = in.x_src.index_select(0, p.src_perm);
  out.x_dst = in.x_dst.index_select(0, p.dst_perm);
  out.edge_attr = in.edge_attr.index_select(0, p.edge_perm);
  out.edge_index = p.edge_index;
  out.upstream = in.upstream.index_select(0, p.dst_perm);
  out.weights = in.weights;
  return out;
}

Reference permute_reference(const Reference& ref, const WorldPlan& p) {
  Reference out = ref;
  out.in = permute_inputs(ref.in, p);
  out.out = ref.out.index_select(0, p.dst_perm);
  out.grad_x_src = ref.grad_x_src.index_select(0, p.src_perm);
  out.grad_x_dst = ref.grad_x_dst.index_select(0, p.dst_perm);
  out.grad_edge_attr = ref.grad_edge_attr.index_select(0, p.edge_perm);
  return out;
}

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

std::string verify_rank(const StudyConfig& c, const WorldPlan& plan, const Reference& ref,
                        const CommPtr& comm) {
  const int r = comm->rank();
  const GraphPartition& partition = plan.partition;
  const Inputs& in = ref.in;
  std::string failure;
  auto check = [&](const at::Tensor& a, const at::Tensor& b, const std::string& what) {
    const bool ok = a.defined() && a.sizes() == b.sizes() && at::allclose(a, b, 1e-9, 1e-9);
    if (!ok && failure.empty()) failure = what + " differs on rank " + std::to_string(r);
  };
  RankInputs ri = rank_inputs(in, c, plan, r);
  const at::Tensor edge_attr = in.edge_attr.clone().requires_grad_(true);
  LayerWeights w{in.weights.w_src.clone().requires_grad_(true),
                 in.weights.w_edge.clone().requires_grad_(true),
                 in.weights.w_dst.clone().requires_grad_(true)};
  const LocalGraph local =
      shard_graph_to_local(partition, {ri.x_src, ri.x_dst}, edge_attr, in.edge_index, ri.info,
                           comm, std::nullopt, plan.exchange());
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

RankMetrics measure_rank(const StudyConfig& c, const WorldPlan& plan, const Inputs& in,
                         CountingCommunicator& comm_ref, const CommPtr& comm) {
  const int r = comm->rank();
  const GraphPartition& partition = plan.partition;
  RankMetrics m;
  m.rank = r;
  const std::vector<std::string> stages{"shard_graph_to_local", "layer_forward", "backward"};
  std::map<std::string, std::vector<double>> wall, cpu;
  for (int rep = 0; rep < c.warmup + c.repeats; ++rep) {
    comm_ref.reset();
    RankInputs ri = rank_inputs(in, c, plan, r);
    const at::Tensor edge_attr = in.edge_attr.detach().clone().requires_grad_(true);
    LayerWeights lw{in.weights.w_src.clone().requires_grad_(true),
                    in.weights.w_edge.clone().requires_grad_(true),
                    in.weights.w_dst.clone().requires_grad_(true)};
    LocalGraph local;
    at::Tensor out;
    for (const auto& stage : stages) {
      comm->barrier();
      const int64_t sent_before = bytes_sent_so_far(comm_ref);
      const auto t0 = Clock::now();
      const double c0 = thread_cpu_seconds();
      if (stage == "shard_graph_to_local") {
        local = shard_graph_to_local(partition, {ri.x_src, ri.x_dst}, edge_attr, in.edge_index,
                                     ri.info, comm, std::nullopt, plan.exchange());
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
      m.bytes_sent_by_stage[stage] = bytes_sent_so_far(comm_ref) - sent_before;  // last repeat's
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

}  // namespace detail

int run_study_rank(const std::string& config_path, int world, const std::string& result_path,
                   bool do_verify, const std::string& scheme, const std::string& src_exchange) {
  const StudyConfig c = load_study_config(config_path);
  const CommPtr gloo = communicator_from_env("gloo", std::chrono::minutes(10));
  TORCH_CHECK_VALUE(gloo->size() == world, "graphshard study-rank: WORLD_SIZE: expected ", world,
                    ", got ", gloo->size());
  auto comm = std::make_shared<CountingCommunicator>(gloo);
  const Graph g = build_graph(c.graph);
  const WorldPlan plan = plan_partition(g, c, world, scheme, src_exchange);
  const RankMetrics m =
      measure_rank(c, plan, permute_inputs(make_inputs(g, c, c.dtype), plan), *comm, comm);
  std::string failure;
  if (do_verify) failure = verify_rank(c, plan, permute_reference(make_reference(g, c), plan), gloo);
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

}  // namespace graphshard::study
