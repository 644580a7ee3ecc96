// Every graph function of graphshard/graph.h beside the naive ATen formulation a user would
// otherwise write, on random graphs with E = 1e5, 1e6, 1e7 edges (int64 edge index, average
// in-degree 12: n_dst = n_src = E / 12, sources uniform, destinations uniform and, except where
// the row says sorted=0 or the function sorts, dst-sorted; fixed seeds). Node features are
// [n, 16] float32, edge attributes [E, 4] float32; partitions and chunks have 8 parts, and
// materialise builds the middle part (4). CPU with the default intra-op thread count, or one
// CUDA device (--device=cuda: E = 1e6, 1e7, 1e8; each call is followed by a device
// synchronisation, inside the timing).
//
//   build/graphshard_bench_graph [--quick] [--device=cpu|cuda] [--copy-rows=1]
//                                [--benchmark_filter=...]
//
// --quick: E = 1e5 only, short timings (a smoke pass that checks every result).
// Each row is tagged (bench_common.h) function=F;role={graphshard,naive};engine={cpu,cuda}, and
// has the counters edges_per_second and peak_extra_memory_ratio: (peak bytes allocated during
// one call, outputs included, minus the bytes allocated before it) / (bytes of the call's tensor
// arguments), counted by memory_tracker.h on CPU (ATen CPU storage and the C++ heap) and by the
// caching allocator's statistics on CUDA. On CUDA each function also has a `bare` row: a
// device-to-device copy that moves as many bytes as the function reads and writes (its tensor
// arguments and results), so time / bare = copy bandwidth / the function's achieved bandwidth
// (--copy-rows=1: the same rows on the CPU, against memcpy).
// Before timing, every row checks that the graphshard result equals the naive one exactly; a
// mismatch skips the row with an error and makes the exit status 1.
//
// shard_edges_1hop runs with a null group (W = 1: the library validates and returns its inputs;
// the naive row selects "rank 0's destination range", i.e. copies every edge); its W > 1 path
// needs a multi-rank communicator and is not measured here.
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "bench_common.h"
#include "device.h"
#include "graphshard/graph.h"
#include "graphshard/shapes.h"
#include "memory_tracker.h"

namespace graphshard::bench {
namespace {

constexpr int64_t kDegree = 12, kParts = 8, kPart = kParts / 2, kNodeDim = 16, kEdgeDim = 4;

using Tensors = std::vector<at::Tensor>;

bool g_mismatch = false;  // some row's result differed: main exits non-zero (the CI smoke fails)
c10::Device g_device(c10::kCPU);
std::string g_engine = "cpu";  // the rows' engine tag: the device type

struct Graph {
  int64_t n_src = 0, n_dst = 0, num_edges = 0;
  bool sorted = false;       // row 1 non-decreasing
  at::Tensor edge_index;     // [2, E] int64
  at::Tensor x_src, x_dst;   // [n, kNodeDim] float32
  at::Tensor edge_attr;      // [E, kEdgeDim] float32
  GraphPartition partition;  // kParts parts (sorted graphs only)
};

// The graph with E edges, dst-sorted or not; built once per (E, sorted) and kept.
const Graph& graph(int64_t e, bool sorted) {
  static std::map<std::pair<int64_t, bool>, Graph> cache;
  auto it = cache.find({e, sorted});
  if (it != cache.end()) return it->second;
  Graph g;
  g.num_edges = e;
  g.sorted = sorted;
  g.n_dst = g.n_src = e / kDegree;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(20240 + e);
  const at::Tensor src = at::randint(g.n_src, {e}, gen, at::kLong);
  at::Tensor dst = at::randint(g.n_dst, {e}, gen, at::kLong);
  if (sorted) dst = std::get<0>(at::sort(dst));
  g.edge_index = at::stack({src, dst});
  g.x_src = at::randn({g.n_src, kNodeDim}, gen);
  g.x_dst = at::randn({g.n_dst, kNodeDim}, gen);
  g.edge_attr = at::randn({e, kEdgeDim}, gen);
  for (at::Tensor* t : {&g.edge_index, &g.x_src, &g.x_dst, &g.edge_attr}) *t = t->to(g_device);
  if (sorted) g.partition = build_graph_partition(g.edge_index, kParts, {g.n_src, g.n_dst});
  return cache.emplace(std::make_pair(e, sorted), std::move(g)).first->second;
}

// Which tensor arguments a call takes (the denominator of peak_extra_memory_ratio).
enum Inputs { kEdges = 1, kSrcFeatures = 2, kDstFeatures = 4, kEdgeAttr = 8 };

int64_t input_bytes(const Graph& g, int inputs) {
  auto bytes = [](const at::Tensor& t) { return static_cast<int64_t>(t.nbytes()); };
  int64_t b = 0;
  if (inputs & kEdges) b += bytes(g.edge_index);
  if (inputs & kSrcFeatures) b += bytes(g.x_src);
  if (inputs & kDstFeatures) b += bytes(g.x_dst);
  if (inputs & kEdgeAttr) b += bytes(g.edge_attr);
  return b;
}

// Results as tensor lists, for the exact comparison before timing.
Tensors flat(const Tensors& t) {
  return t;
}
Tensors flat(bool b) {
  return {at::tensor(std::vector<int64_t>{b ? 1 : 0})};
}
Tensors flat(const SortedEdgeIndex& s) {
  return {s.edge_index, s.perm};
}
Tensors flat(const GraphPartition& p) {
  return {at::tensor(p.dst_splits), at::tensor(p.edge_splits)};
}
Tensors flat(const MaterialisedPartition& m) {
  return {m.src_ids, m.edge_index, m.x_src, m.x_dst, m.edge_attr};
}
Tensors flat(const ConnectedSources& c) {
  return {c.kept_ids, c.edge_index, c.x_src};
}
Tensors flat(const EdgeChunks& c) {
  Tensors out = c.edge_index;
  out.insert(out.end(), c.edge_attr.begin(), c.edge_attr.end());
  return out;
}
Tensors flat(const ShardedEdges& s) {
  return {s.edge_index, s.edge_attr};
}

bool same(const Tensors& a, const Tensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!a[i].defined() || !b[i].defined() || a[i].scalar_type() != b[i].scalar_type() ||
        a[i].sizes() != b[i].sizes() || !at::equal(a[i], b[i])) {
      return false;
    }
  }
  return true;
}

// Edges whose destination lies in [lo, hi), in input order: what a user writes without sorting.
at::Tensor edges_in_range(const at::Tensor& ei, int64_t lo, int64_t hi) {
  const at::Tensor dst = ei.select(0, 1);
  return ((dst >= lo) & (dst < hi)).nonzero().squeeze(1);
}

// ---- the naive formulations -------------------------------------------------------------

Tensors naive_sort(const Graph& g) {
  const at::Tensor perm = std::get<1>(at::sort(g.edge_index.select(0, 1), /*stable=*/true,
                                               /*dim=*/0, /*descending=*/false));
  return {g.edge_index.index_select(1, perm), perm};
}

bool naive_is_sorted(const Graph& g) {
  const at::Tensor dst = g.edge_index.select(0, 1);
  return (dst.slice(0, 1) >= dst.slice(0, 0, -1)).all().item<bool>();
}

Tensors naive_partition(const Graph& g) {
  const std::vector<int64_t> dst_splits = balanced_sizes(g.n_dst, kParts);
  const at::Tensor degree = at::bincount(g.edge_index.select(0, 1), {}, g.n_dst);
  Tensors sums;
  for (const at::Tensor& part : degree.split_with_sizes(dst_splits)) sums.push_back(part.sum());
  return {at::tensor(dst_splits), at::stack(sums).cpu()};  // the sizes on the host, as ours
}

Tensors naive_materialise(const Graph& g) {
  const auto [lo, hi] = partition_range(balanced_sizes(g.n_dst, kParts), kPart);
  const at::Tensor idx = edges_in_range(g.edge_index, lo, hi);
  const at::Tensor part = g.edge_index.index_select(1, idx);
  const auto [kept, inverse] = at::_unique(part.select(0, 0), /*sorted=*/true,
                                           /*return_inverse=*/true);
  return {kept, at::stack({inverse, part.select(0, 1) - lo}), g.x_src.index_select(0, kept),
          g.x_dst.narrow(0, lo, hi - lo), g.edge_attr.index_select(0, idx)};
}

Tensors naive_drop(const Graph& g) {
  const auto [kept, inverse] = at::_unique(g.edge_index.select(0, 0), /*sorted=*/true,
                                           /*return_inverse=*/true);
  return {kept, at::stack({inverse, g.edge_index.select(0, 1)}), g.x_src.index_select(0, kept)};
}

Tensors naive_chunks(const Graph& g, int64_t parts) {
  const std::vector<int64_t> sizes = balanced_sizes(g.n_dst, parts);
  Tensors index, attr;
  for (int64_t c = 0; c < parts; ++c) {
    const auto [lo, hi] = partition_range(sizes, c);
    const at::Tensor idx = edges_in_range(g.edge_index, lo, hi);
    index.push_back(g.edge_index.index_select(1, idx));
    attr.push_back(g.edge_attr.index_select(0, idx));
  }
  index.insert(index.end(), attr.begin(), attr.end());
  return index;
}

// ---- running one row ----------------------------------------------------------------------

// Tags the row, checks lib(g) == naive(g), measures the peak extra memory of one call of
// `timed`, then times it.
template <class Lib, class Naive, class Timed>
void run_row(benchmark::State& state, const std::string& function, const char* role, const Graph& g,
             int inputs, const Lib& lib, const Naive& naive, const Timed& timed) {
  tag(state, {function, role, g_engine, 1, -1, -1, g.num_edges});
  if (!same(flat(lib(g)), flat(naive(g)))) {
    g_mismatch = true;
    state.SkipWithError(("graphshard::" + function + " differs from the naive result").c_str());
    return;
  }
  synchronize(g_device);
  const bool cpu = g_device.is_cpu();
  const int64_t before = cpu ? current_bytes() : cuda_allocated_bytes(g_device);
  cpu ? reset_peak() : reset_cuda_peak(g_device);
  {
    auto result = timed(g);
    benchmark::DoNotOptimize(result);
    synchronize(g_device);
  }
  const int64_t extra = (cpu ? peak_bytes() : cuda_peak_allocated_bytes(g_device)) - before;
  for (auto _ : state) {
    auto result = timed(g);
    benchmark::DoNotOptimize(result);
    synchronize(g_device);
  }
  state.counters["edges_per_second"] = benchmark::Counter(
      static_cast<double>(g.num_edges), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["peak_extra_memory_ratio"] =
      static_cast<double>(extra) / static_cast<double>(input_bytes(g, inputs));
}

// The inputs each function must read in full, for the rows with a device copy beside them: the
// bytes it moves are those plus its fresh results (written once); a function that reads only
// part of its inputs (materialise: one part) is counted as reading what it writes. Functions
// that return views or host sizes (partition, sorted chunks, shard at W = 1) have no copy row.
const std::map<std::string, int>& scanned_inputs() {
  static const std::map<std::string, int> m{
      {"sort_edge_index_by_dst", kEdges},
      {"drop_unconnected_src_nodes", kEdges | kSrcFeatures},
      {"GraphPartition::materialise", 0},
      {"sort_edges_1hop_chunks (unsorted)", kEdges | kEdgeAttr}};
  return m;
}

int64_t moved_bytes(const std::string& function, const Graph& g, const Tensors& results) {
  int64_t fresh = 0;
  for (const at::Tensor& t : results) {
    bool view = false;
    for (const at::Tensor* in : {&g.edge_index, &g.x_src, &g.x_dst, &g.edge_attr}) {
      view = view || t.storage().is_alias_of(in->storage());
    }
    if (!view) fresh += static_cast<int64_t>(t.nbytes());
  }
  const int scanned = scanned_inputs().at(function);
  return scanned ? input_bytes(g, scanned) + fresh : 2 * fresh;
}

// The bare row on a device: a copy that reads and writes as many bytes as one call of the
// function moves (moved_bytes).
template <class Lib>
void run_copy_row(benchmark::State& state, const std::string& function, const Graph& g,
                  const Lib& lib) {
  tag(state, {function, "bare", g_engine, 1, -1, -1, g.num_edges});
  const int64_t moved = moved_bytes(function, g, flat(lib(g)));
  const auto opts = at::TensorOptions().dtype(at::kByte).device(g_device);
  const at::Tensor from = at::ones({moved / 2}, opts);
  at::Tensor to = at::empty({moved / 2}, opts);
  synchronize(g_device);
  for (auto _ : state) {
    to.copy_(from);
    synchronize(g_device);
  }
  state.counters["bytes_moved"] = static_cast<double>(moved);
}

struct Config {
  std::vector<int64_t> sizes;
  bool quick = false;
  bool copy_rows = false;  // the device-copy rows on the CPU too (--copy-rows)
};

// Registers the graphshard and the naive row (and on a device the copy row) of one function for
// every size (side by side);
// `orders` lists the input orders (1 dst-sorted, 0 not): one is implied, two become an argument.
template <class Lib, class Naive>
void add(const Config& cfg, const std::string& function, int inputs, std::vector<int> orders,
         Lib lib, Naive naive) {
  std::vector<std::string> roles{"graphshard", "naive"};
  if (!g_device.is_cpu() || cfg.copy_rows) roles.push_back("bare");
  for (int64_t e : cfg.sizes) {
    for (const std::string& role : roles) {
      // A copy row only for the functions (and input orders) scanned_inputs() lists.
      std::vector<int> kept;
      for (int o : orders) {
        const std::string name =
            orders.size() > 1 ? function + (o ? " (sorted)" : " (unsorted)") : function;
        if (role != "bare" || scanned_inputs().count(name)) kept.push_back(o);
      }
      if (kept.empty()) continue;
      planned_benchmarks() += orders.size() > 1 ? static_cast<int>(kept.size()) : 1;
      auto* b = benchmark::RegisterBenchmark(
          (function + "/" + role).c_str(), [=](benchmark::State& state) {
            const bool sorted = orders.size() > 1 ? state.range(1) != 0 : orders[0] != 0;
            const Graph& g = graph(state.range(0), sorted);
            // Both input orders of one function are separate summary rows.
            const std::string name =
                orders.size() > 1 ? function + (sorted ? " (sorted)" : " (unsorted)") : function;
            if (role == "graphshard") {
              run_row(state, name, role.c_str(), g, inputs, lib, naive, lib);
            } else if (role == "naive") {
              run_row(state, name, role.c_str(), g, inputs, lib, naive, naive);
            } else {
              run_copy_row(state, name, g, lib);
            }
          });
      if (orders.size() > 1) {
        b->ArgsProduct({{e}, {kept.begin(), kept.end()}})->ArgNames({"E", "sorted"});
      } else {
        b->Arg(e)->ArgName("E");
      }
      b->UseRealTime()->Unit(benchmark::kMillisecond);
      b->MinTime(cfg.quick ? 0.02 : e >= 10'000'000 && g_device.is_cpu() ? 2.0 : 0.3);
    }
  }
}

void register_all(const Config& cfg) {
  add(
      cfg, "sort_edge_index_by_dst", kEdges, {0},
      [](const Graph& g) { return sort_edge_index_by_dst(g.edge_index, g.n_dst); }, naive_sort);
  add(
      cfg, "is_edge_index_dst_sorted", kEdges, {1},
      [](const Graph& g) { return is_edge_index_dst_sorted(g.edge_index); }, naive_is_sorted);
  add(
      cfg, "build_graph_partition", kEdges, {1},
      [](const Graph& g) {
        return build_graph_partition(g.edge_index, kParts, {g.n_src, g.n_dst});
      },
      naive_partition);
  add(
      cfg, "GraphPartition::materialise", kEdges | kSrcFeatures | kDstFeatures | kEdgeAttr, {1},
      [](const Graph& g) {
        return g.partition.materialise(kPart, {g.x_src, g.x_dst}, g.edge_attr, g.edge_index);
      },
      naive_materialise);
  add(
      cfg, "drop_unconnected_src_nodes", kEdges | kSrcFeatures, {1},
      [](const Graph& g) {
        return drop_unconnected_src_nodes(g.x_src, g.edge_index, {g.n_src, g.n_dst});
      },
      naive_drop);
  add(
      cfg, "sort_edges_1hop_chunks", kEdges | kEdgeAttr, {1, 0},
      [](const Graph& g) {
        return sort_edges_1hop_chunks(std::make_pair(g.n_src, g.n_dst), g.edge_attr, g.edge_index,
                                      kParts, g.sorted);
      },
      [](const Graph& g) { return naive_chunks(g, kParts); });
  add(
      cfg, "shard_edges_1hop", kEdges | kEdgeAttr, {1},
      [](const Graph& g) {
        return shard_edges_1hop(g.edge_attr, g.edge_index, g.n_src, g.n_dst, nullptr, true);
      },
      [](const Graph& g) {  // W = 1: rank 0's block is destination range [0, n_dst)
        const at::Tensor idx = edges_in_range(g.edge_index, 0, g.n_dst);
        return Tensors{g.edge_index.index_select(1, idx), g.edge_attr.index_select(0, idx)};
      });
}

// The tracker must see a 4 MiB tensor and a 1 MiB vector; otherwise the memory counters lie.
bool memory_tracker_works() {
  const int64_t before = current_bytes();
  reset_peak();
  { const at::Tensor t = at::empty({1 << 20}, at::kFloat); }
  const bool tensor_seen = peak_bytes() - before >= (int64_t{4} << 20);
  reset_peak();
  {
    std::vector<char> v(1 << 20);
    benchmark::DoNotOptimize(v.data());
  }
  const bool heap_seen = peak_bytes() - before >= (int64_t{1} << 20);
  return tensor_seen && heap_seen;
}

}  // namespace
}  // namespace graphshard::bench

int main(int argc, char** argv) {
  namespace gb = graphshard::bench;
  gb::install_memory_tracker();
  if (!gb::memory_tracker_works()) {
    std::fprintf(stderr, "graphshard_bench_graph: the memory tracker does not count allocations\n");
    return 1;
  }
  gb::Config cfg;
  cfg.quick = gb::take_quick_flag(argc, argv);
  try {
    gb::g_device = gb::parse_device(gb::take_value_flag(argc, argv, "--device", "cpu"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "graphshard_bench_graph: %s\n", e.what());
    return 2;
  }
  gb::g_engine = c10::DeviceTypeName(gb::g_device.type(), /*lower_case=*/true);
  cfg.copy_rows = gb::take_value_flag(argc, argv, "--copy-rows", "0") != "0";
  const bool cpu = gb::g_device.is_cpu();
  cfg.sizes = cfg.quick ? std::vector<int64_t>{100'000}
              : cpu     ? std::vector<int64_t>{100'000, 1'000'000, 10'000'000}
                        : std::vector<int64_t>{1'000'000, 10'000'000, 100'000'000};
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  gb::register_all(cfg);
  gb::ProgressReporter display("graph");
  benchmark::RunSpecifiedBenchmarks(&display);
  benchmark::Shutdown();
  return gb::g_mismatch ? 1 : 0;
}
