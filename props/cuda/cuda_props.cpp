// Device parity (label `gpu`): every graph function and every communicating primitive gives on
// CUDA tensors bitwise what it gives on CPU tensors (which the other suites hold to the
// reference), on the same random cases; the primitives and shard_graph_to_local run on W
// simulated ranks that share one GPU. Data are small integers, so even sums agree bitwise
// whatever order a device adds in. Without a CUDA device every test is skipped (reported as
// skipped by ctest).
#include <cstdlib>
#include <numeric>

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include "generators.h"
#include "graph_generators.h"
#include "graphshard/graph.h"
#include "graphshard/primitives.h"
#include "harness.h"

namespace graphshard::props {
namespace {

// The device under test: CUDA. GRAPHSHARD_PARITY_DEVICE=cpu runs these tests against the CPU
// itself, which checks only the tests' own harness (by hand, before spending GPU time).
at::DeviceType parity_device() {
  const char* d = std::getenv("GRAPHSHARD_PARITY_DEVICE");
  return d && std::string(d) == "cpu" ? at::kCPU : at::kCUDA;
}

#define GRAPHSHARD_REQUIRE_CUDA()                     \
  if (parity_device() == at::kCUDA && !at::hasCUDA()) \
  GTEST_SKIP() << "no CUDA device on this machine"

at::Tensor cu(const at::Tensor& t) {
  return t.defined() ? t.to(parity_device()) : t;
}

// The device's result lives on the device (no silent detour through the host) and equals the
// CPU one.
void same(const at::Tensor& on_gpu, const at::Tensor& on_cpu, const std::string& what) {
  RC_ASSERT(on_gpu.device().type() == parity_device());
  expect_equal(on_gpu.cpu(), on_cpu, what);
}

// rc::check inside a plain TEST, so that the test can be skipped before RapidCheck runs.
template <typename F>
void check_property(const std::string& name, F&& property) {
  EXPECT_TRUE(rc::check(name, std::forward<F>(property)));
}

TEST(CudaGraph, SortAndSortednessMatchCpuBitwise) {
  GRAPHSHARD_REQUIRE_CUDA();
  check_property("sort on CUDA == sort on CPU", [] {
    auto g = *gen_graph_spec(60000, 120000, 0);
    // int32 or int64 ids; no bound, the exact one, or one past 2^32 (64-bit radix keys).
    const bool narrow_ids = *rc::gen::arbitrary<bool>();
    const at::Tensor ei = make_edge_index(g).to(narrow_ids ? at::kInt : at::kLong), d = cu(ei);
    const int bound = *rc::gen::inRange(0, 3);
    const std::optional<int64_t> max_value =
        bound == 0 ? std::nullopt
                   : std::optional<int64_t>(bound == 1 ? g.n_dst : g.n_dst + (int64_t{1} << 33));
    const auto want = sort_edge_index_by_dst(ei, max_value);
    const auto got = sort_edge_index_by_dst(d, max_value);
    same(got.edge_index, want.edge_index, "sorted edge_index");
    same(got.perm, want.perm, "perm");
    same(d, ei, "input edge_index (unchanged)");
    RC_ASSERT(is_edge_index_dst_sorted(d) == is_edge_index_dst_sorted(ei));
    RC_ASSERT(is_edge_index_dst_sorted(got.edge_index));
  });
}

TEST(CudaGraph, PartitionAndMaterialiseMatchCpuBitwise) {
  GRAPHSHARD_REQUIRE_CUDA();
  check_property("partition + materialise on CUDA == on CPU", [] {
    const auto g = *gen_graph_spec(2000, 20000, 1);
    const int64_t parts = *rc::gen::inRange<int64_t>(1, 9);
    const at::Tensor ei = make_edge_index(g);
    const at::Tensor xs = make_rows(g.n_src, {3}, at::kFloat, g.seed + 1);
    const at::Tensor xd = make_rows(g.n_dst, {2}, at::kFloat, g.seed + 2);
    const at::Tensor ea = make_rows(ei.size(1), {4}, at::kFloat, g.seed + 3);
    const auto want = build_graph_partition(ei, parts, {g.n_src, g.n_dst});
    const auto got = build_graph_partition(cu(ei), parts, {g.n_src, g.n_dst});
    RC_ASSERT(got == want);
    for (int64_t i = 0; i < parts; ++i) {
      const auto w = want.materialise(i, {xs, xd}, ea, ei);
      const auto m = got.materialise(i, {cu(xs), cu(xd)}, cu(ea), cu(ei));
      same(m.x_src, w.x_src, "x_src");
      same(m.x_dst, w.x_dst, "x_dst");
      same(m.edge_attr, w.edge_attr, "edge_attr");
      same(m.edge_index, w.edge_index, "edge_index");
      same(m.src_ids, w.src_ids, "src_ids");
    }
  });
}

TEST(CudaGraph, DropUnconnectedAndChunksMatchCpuBitwise) {
  GRAPHSHARD_REQUIRE_CUDA();
  check_property("drop_unconnected_src_nodes + chunks on CUDA == on CPU", [] {
    const auto g = *gen_graph_spec(60000, 60000);
    const at::Tensor ei = make_edge_index(g);
    const at::Tensor xs = make_rows(g.n_src, {2}, at::kFloat, g.seed + 1);
    const at::Tensor ea = make_rows(ei.size(1), {3}, at::kFloat, g.seed + 2);
    const auto want = drop_unconnected_src_nodes(xs, ei, {g.n_src, g.n_dst});
    const auto got = drop_unconnected_src_nodes(cu(xs), cu(ei), {g.n_src, g.n_dst});
    same(got.x_src, want.x_src, "x_src");
    same(got.edge_index, want.edge_index, "edge_index");
    same(got.kept_ids, want.kept_ids, "kept_ids");
    const int64_t chunks = *rc::gen::inRange<int64_t>(1, 9);
    const auto wc = sort_edges_1hop_chunks({g.n_src, g.n_dst}, ea, ei, chunks, g.sorted);
    const auto gc = sort_edges_1hop_chunks({g.n_src, g.n_dst}, cu(ea), cu(ei), chunks, g.sorted);
    RC_ASSERT(gc.edge_index.size() == wc.edge_index.size());
    for (size_t i = 0; i < wc.edge_index.size(); ++i) {
      same(gc.edge_index[i], wc.edge_index[i], "chunk edge_index");
      same(gc.edge_attr[i], wc.edge_attr[i], "chunk edge_attr");
    }
  });
}

// Only forwards run on W > 1 simulated CUDA ranks, never autograd's backward: PyTorch executes
// every CUDA backward node of a process on one device thread, so the W ranks' backward
// collectives would wait for each other on that one thread. Each backward is itself one of
// these forwards (SPEC section 1: split, gather, reduce, the swapped transpose), and those are
// compared; autograd's own backward runs on one rank (PrimitiveBackwardsOnOneRankMatchCpu).
// One primitive on W simulated ranks: 3-D tensors cut along any dim (the CUDA pack and unpack
// kernels move pieces along non-leading dims), row-major or strided (ATen's copies then).
struct PrimitiveCase {
  int fn = 0, w = 1;
  int64_t d = 0, dc = 0;       // the cut dim; all_to_all's concat dim (split along d)
  std::vector<int64_t> sizes;  // pieces along d (along dc for all_to_all)
  std::vector<int64_t> shape;  // the full tensor
  at::ScalarType dtype = at::kFloat;
  bool strided = false;
  uint64_t seed = 0;
};

rc::Gen<PrimitiveCase> gen_primitive_case() {
  return rc::gen::exec([] {
    PrimitiveCase c;
    c.w = *rc::gen::inRange(1, 9);
    c.fn = *rc::gen::inRange(0, 6);
    c.sizes = *gen_shard_sizes(c.w);
    c.shape = *gen_shape(3);
    c.d = *rc::gen::inRange<int64_t>(0, 3);
    c.dc = (c.d + *rc::gen::inRange<int64_t>(1, 3)) % 3;
    c.shape[c.fn == 4 ? c.dc : c.d] = std::accumulate(c.sizes.begin(), c.sizes.end(), int64_t{0});
    c.dtype = (*gen_dtype()).type;
    c.strided = *rc::gen::weightedElement<bool>({{3, false}, {1, true}});
    c.seed = *rc::gen::arbitrary<uint64_t>();
    return c;
  });
}

// With `backward`, each rank's result is instead the gradient of its input for a seeded upstream
// gradient (one rank only, see above).
std::vector<at::Tensor> run_primitive(const PrimitiveCase& c, bool on_gpu, bool backward = false) {
  std::vector<at::Tensor> out(c.w);
  on_sim_ranks(c.w, [&](const CommPtr& comm) {
    const int r = comm->rank();
    // Inputs: full (replicated) for reduce and shard, the rank's piece otherwise.
    const bool full = c.fn == 1 || c.fn == 2 || c.fn == 5;
    auto shape = c.shape;
    if (!full) shape[c.fn == 4 ? c.dc : c.d] = c.sizes[r];
    at::Tensor x =
        make_data_as(shape, c.dtype, c.seed + r, at::MemoryFormat::Contiguous, c.strided);
    if (on_gpu) x = cu(x);
    if (backward) x.requires_grad_(true);
    at::Tensor y;
    switch (c.fn) {
      case 0:
        y = gather_tensor(x, c.d, c.sizes, comm);
        break;
      case 1:
        y = reduce_tensor(x, comm);
        break;
      case 2:
        y = reduce_shard_tensor(x, c.d, c.sizes, comm);
        break;
      case 3:
        y = sync_tensor(x, c.d, c.sizes, comm, true);
        break;
      case 4:
        y = all_to_all_transpose(x, c.d, balanced_sizes(c.shape[c.d], c.w), c.dc, c.sizes, comm);
        break;
      default:
        y = shard_tensor(x, c.d, c.sizes, comm);
    }
    if (on_gpu) RC_ASSERT(y.device().type() == parity_device());
    if (backward) {
      at::Tensor g = make_data(y.sizes().vec(), c.dtype, c.seed + 1000 + r);
      y.backward(on_gpu ? cu(g) : g);
      RC_ASSERT(x.grad().defined());
      if (on_gpu) RC_ASSERT(x.grad().device().type() == parity_device());
      out[r] = x.grad().cpu();
    } else {
      out[r] = y.cpu();
    }
  });
  return out;
}

TEST(CudaSim, PrimitiveForwardsOnSimulatedRanksMatchCpu) {
  GRAPHSHARD_REQUIRE_CUDA();
  check_property("primitives on CUDA sim ranks == on CPU sim ranks", [] {
    const auto c = *gen_primitive_case();
    const auto want = run_primitive(c, false);
    const auto got = run_primitive(c, true);
    for (int r = 0; r < c.w; ++r) {
      // Small-integer data: every sum is exact, so even reductions agree bitwise.
      expect_equal(got[r], want[r],
                   "function " + std::to_string(c.fn) + " dim " + std::to_string(c.d) +
                       (c.fn == 4 ? " concat dim " + std::to_string(c.dc) : "") + " dtype " +
                       std::string(c10::toString(c.dtype)) + ", rank " + std::to_string(r));
    }
  });
}

// Autograd's backward on CUDA tensors, on one rank (the most a process's single CUDA backward
// thread allows): the backward collectives are then local, but the autograd wiring (saved
// sizes, devices and dtypes of the gradients) runs on the GPU.
TEST(CudaSim, PrimitiveBackwardsOnOneRankMatchCpu) {
  GRAPHSHARD_REQUIRE_CUDA();
  check_property("primitive backwards on one CUDA rank == on one CPU rank", [] {
    auto c = *gen_primitive_case();
    c.w = 1;
    c.sizes = {c.shape[c.fn == 4 ? c.dc : c.d]};
    c.dtype = (*gen_float_dtype()).type;
    const auto want = run_primitive(c, false, true);
    const auto got = run_primitive(c, true, true);
    expect_equal(got[0], want[0],
                 "gradient of function " + std::to_string(c.fn) + " dim " + std::to_string(c.d) +
                     " dtype " + std::string(c10::toString(c.dtype)));
  });
}

// shard_graph_to_local and one message-passing step (sources summed into their destinations,
// gathered) on W simulated ranks, forward only (see above): sources sharded, destinations and
// edges not. Float64 small integers: sums are exact in any order (CUDA's index_add is atomic).
struct LayerRun {
  std::vector<at::Tensor> edge_index, x_src, out;  // per rank
};

LayerRun run_layer(const GraphSpec& g, int w, bool on_gpu) {
  LayerRun run;
  for (auto* v : {&run.edge_index, &run.x_src, &run.out}) v->resize(w);
  const at::Tensor ei_cpu = make_edge_index(g);
  on_sim_ranks(w, [&](const CommPtr& comm) {
    const int r = comm->rank();
    auto dev = [&](const at::Tensor& t) { return on_gpu ? cu(t) : t; };
    const at::Tensor ei = dev(ei_cpu);
    const auto src_sizes = balanced_sizes(g.n_src, w);
    const auto [lo, hi] = partition_range(src_sizes, r);
    const at::Tensor xs =
        dev(make_rows(g.n_src, {3}, at::kDouble, g.seed + 1).narrow(0, lo, hi - lo));
    const at::Tensor xd = dev(make_rows(g.n_dst, {3}, at::kDouble, g.seed + 2));
    const at::Tensor ea = dev(make_rows(ei.size(1), {3}, at::kDouble, g.seed + 3));
    const GraphPartition p = build_graph_partition(ei, w, {g.n_src, g.n_dst});
    const BipartiteGraphShardInfo info(ShardSizes(src_sizes), std::nullopt, std::nullopt);
    const LocalGraph local = shard_graph_to_local(p, {xs, xd}, ea, ei, info, comm);
    const at::Tensor msg = local.x_src.index_select(0, local.edge_index[0]) + local.edge_attr;
    const at::Tensor y = local.x_dst.index_add(0, local.edge_index[1], msg);
    const at::Tensor full = gather_tensor(y, 0, p.dst_splits, comm);
    run.edge_index[r] = local.edge_index.cpu();
    run.x_src[r] = local.x_src.cpu();
    run.out[r] = full.cpu();
  });
  return run;
}

TEST(CudaSim, ShardedLayerForwardOnSimulatedRanksMatchesCpu) {
  GRAPHSHARD_REQUIRE_CUDA();
  check_property("shard_graph_to_local + layer on CUDA sim ranks == on CPU sim ranks", [] {
    const auto g = *gen_graph_spec(500, 3000, 1);
    const int w = *rc::gen::inRange(1, 9);
    const auto want = run_layer(g, w, false);
    const auto got = run_layer(g, w, true);
    for (int r = 0; r < w; ++r) {
      const std::string at = ", rank " + std::to_string(r);
      expect_equal(got.edge_index[r], want.edge_index[r], "local edge_index" + at);
      expect_equal(got.x_src[r], want.x_src[r], "local x_src" + at);
      expect_equal(got.out[r], want.out[r], "gathered output" + at);
    }
  });
}

}  // namespace
}  // namespace graphshard::props
