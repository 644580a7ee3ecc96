// Device parity (label `gpu`): every graph function and every communicating primitive gives on
// CUDA tensors bitwise what it gives on CPU tensors (which the other suites hold to the
// reference), on the same random cases; the primitives run on W simulated ranks that share one
// GPU. Reductions are compared within float tolerance: the CUDA engine may add in another
// order. Without a CUDA device every test is skipped (reported as skipped by ctest).
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

#define GRAPHSHARD_REQUIRE_CUDA() \
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device on this machine"

at::Tensor cu(const at::Tensor& t) {
  return t.defined() ? t.to(at::kCUDA) : t;
}

// The CUDA result is a CUDA tensor (no silent detour through the host) and equals the CPU one.
void same(const at::Tensor& on_gpu, const at::Tensor& on_cpu, const std::string& what) {
  RC_ASSERT(on_gpu.is_cuda());
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
    const at::Tensor ei = make_edge_index(g), d = cu(ei);
    const bool bound = *rc::gen::arbitrary<bool>();
    const std::optional<int64_t> max_value = bound ? std::optional<int64_t>(g.n_dst) : std::nullopt;
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

// Each primitive forward and backward on W simulated ranks, the same case once with CPU and
// once with CUDA tensors.
struct PrimitiveRun {
  std::vector<at::Tensor> out, grad;  // per rank
};

PrimitiveRun run_primitive(int fn, int w, const std::vector<int64_t>& sizes, int64_t width,
                           at::ScalarType dtype, uint64_t seed, bool on_gpu) {
  PrimitiveRun run;
  run.out.resize(w);
  run.grad.resize(w);
  const int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  on_sim_ranks(w, [&](const CommPtr& comm) {
    const int r = comm->rank();
    // Inputs: full (replicated) for reduce, the rank's piece along dim 0 otherwise.
    const bool full = fn == 1 || fn == 2;
    at::Tensor x = make_data({full ? total : sizes[r], width}, dtype, seed + r);
    if (on_gpu) x = cu(x);
    x.requires_grad_(true);
    at::Tensor y;
    switch (fn) {
      case 0:
        y = gather_tensor(x, 0, sizes, comm);
        break;
      case 1:
        y = reduce_tensor(x, comm);
        break;
      case 2:
        y = reduce_shard_tensor(x, 0, sizes, comm);
        break;
      case 3:
        y = sync_tensor(x, 0, sizes, comm, true);
        break;
      default:
        y = all_to_all_transpose(x, 1, balanced_sizes(width, w), 0, sizes, comm);
    }
    const at::Tensor up = make_data(y.sizes().vec(), dtype, seed + 100 + r);
    y.backward(on_gpu ? cu(up) : up);
    run.out[r] = y.detach().cpu();
    run.grad[r] = x.grad().cpu();
  });
  return run;
}

TEST(CudaSim, PrimitivesOnSimulatedRanksMatchCpu) {
  GRAPHSHARD_REQUIRE_CUDA();
  check_property("primitives on CUDA sim ranks == on CPU sim ranks", [] {
    const int w = *rc::gen::inRange(1, 9);
    const int fn = *rc::gen::inRange(0, 5);
    const auto sizes = *gen_shard_sizes(w);
    const int64_t width = *rc::gen::inRange<int64_t>(1, 6);
    const auto dtype = (*gen_float_dtype()).type;
    const uint64_t seed = *rc::gen::arbitrary<uint64_t>();
    const auto want = run_primitive(fn, w, sizes, width, dtype, seed, false);
    const auto got = run_primitive(fn, w, sizes, width, dtype, seed, true);
    for (int r = 0; r < w; ++r) {
      // Small-integer data: every sum is exact, so even reductions agree bitwise.
      expect_equal(got.out[r], want.out[r], "forward, rank " + std::to_string(r));
      expect_equal(got.grad[r], want.grad[r], "gradient, rank " + std::to_string(r));
    }
  });
}

}  // namespace
}  // namespace graphshard::props
