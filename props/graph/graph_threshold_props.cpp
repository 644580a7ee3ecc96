// The local graph functions equal the naive reference bitwise on both sides of every size at
// which their implementation changes path (core/cpu/graph_kernels.cpp, core/graph/*.cpp):
//   - edge count E vs c * kGrain (c = 1..threads+1): the number of chunks of every chunked pass
//     (sortedness, histograms, scatter), and E vs kGrain: the parallel mark/relabel loops;
//   - source count n_src vs c * kGrain: the chunks of the used-ids prefix scan;
//   - key count K (n_dst or max_value) vs 4096: one-pass vs two-pass counting sort; vs the
//     powers of two above it: the bucket key width (shift) and bucket count of the two-pass
//     sort; vs 8E + 2^20: counting vs comparison sort; vs 2^31 (the end of int32 ids) and 2^32
//     (the CUDA sort's 32-bit keys; on the CPU the comparison path);
//   - part count vs 4096: the parallel histogram combine; n_dst vs the part count (empty parts,
//     the big/small part cut); ids on both sides of part, chunk and bucket boundaries.
// Graphs are sparse (few edges, wide id ranges) so a case costs milliseconds even at 2^32 ids.
// The thresholds are mirrored here, not read from the kernels: a change there needs one here.
#include <algorithm>
#include <initializer_list>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "cpu/graph_kernels.h"  // counting_sort_perm: its blocks == 0 path has no public caller
#include "generators.h"
#include "graph.h"  // reference/graph.h
#include "graphshard/graph.h"

namespace graphshard::props {
namespace {

namespace ref = graphshard::reference;

constexpr int64_t kGrain = int64_t{1} << 15;     // graph_kernels.cpp: kGrain
constexpr int64_t kOnePassKeys = 4096;           // graph_kernels.cpp: kOnePassKeys
constexpr int64_t kCombineGrain = 4096;          // graph_kernels.cpp: the histogram combine grain
constexpr int64_t kInt32End = int64_t{1} << 31;  // ids of an int32 index lie below it
int64_t comparison_sort_above(int64_t e) {       // graph_kernels.cpp: 8 * n + (1 << 20)
  return 8 * e + (int64_t{1} << 20);
}

// Draws with RapidCheck's size fixed at its nominal 100: a sized generator (inRange) would give
// only its lower end in the early cases, and the far side of a threshold few cases at all.
int64_t in_range(int64_t lo, int64_t hi, const char* what) {
  return *rc::gen::resize(100, rc::gen::inRange<int64_t>(lo, hi)).as(what);
}
bool coin(const char* what) {
  return *rc::gen::resize(100, rc::gen::arbitrary<bool>()).as(what);
}
uint64_t draw_seed() {
  return *rc::gen::resize(100, rc::gen::arbitrary<uint32_t>()).as("seed");
}

// One of the values (rc::gen::element would deduce its type from the first argument).
rc::Gen<int64_t> one_of(std::initializer_list<int64_t> values) {
  return rc::gen::elementOf(std::vector<int64_t>(values));
}

struct ThreadGuard {
  int saved = at::get_num_threads();
  ~ThreadGuard() { at::set_num_threads(saved); }
};

// Intra-op threads for the case: the chunk counts are min(threads, E / kGrain).
int draw_threads() {
  const int t = static_cast<int>(in_range(1, 4, "threads"));
  at::set_num_threads(t);
  return t;
}

// t - 1, t or t + 1, at least `floor`.
int64_t around(int64_t t, const char* what, int64_t floor = 0) {
  return std::max(floor, t + in_range(-1, 2, what));
}

// One side of a sparse graph: ids in [0, n); about half the edges take an id next to an anchor
// (anchor - 1, anchor or anchor + 1, clipped), so boundaries are hit from both sides.
struct Side {
  int64_t n = 0;
  std::vector<int64_t> anchors;
};

// Anchors at c * n / k for k = 2, 3 (where chunks of a pass over n ids split it), and random
// multiples of 2^s (bucket boundaries of the two-pass sort for every key width).
std::vector<int64_t> boundary_anchors(int64_t n, uint64_t seed) {
  std::vector<int64_t> a{0, n - 1, n / 2, n / 3, 2 * n / 3};
  std::mt19937_64 rng(seed);
  for (int i = 0; i < 24 && n > 0; ++i) {
    const int s = static_cast<int>(rng() % 24);
    a.push_back(static_cast<int64_t>(rng() % static_cast<uint64_t>(n)) >> s << s);
  }
  return a;
}

// Starts of parts 1..parts-1 of balanced(n, parts) (at most 64 of them, spread).
std::vector<int64_t> part_anchors(int64_t n, int64_t parts) {
  std::vector<int64_t> a;
  const int64_t small = n / parts, rem = n % parts, step = std::max<int64_t>(1, parts / 64);
  for (int64_t j = 1; j < parts; j += step) a.push_back(j * small + std::min(j, rem));
  return a;
}

// [2, E] edge index, int64 or int32. Edge 0 is (n_src - 1, n_dst - 1) and edge 1 is (0, 0), so
// the id ranges are exactly [0, n); then shuffled, and stably sorted by destination if `sorted`.
at::Tensor sparse_edges(const Side& src, const Side& dst, int64_t e, bool int32, bool sorted,
                        uint64_t seed) {
  if (src.n == 0 || dst.n == 0) e = 0;
  std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ULL + 5);
  auto draw = [&](const Side& s) {
    const uint64_t r = rng();
    if (s.anchors.empty() || r % 2 == 0) return static_cast<int64_t>((r >> 1) % s.n);
    const int64_t a =
        s.anchors[(r >> 1) % s.anchors.size()] + static_cast<int64_t>(r >> 40) % 3 - 1;
    return std::clamp<int64_t>(a, 0, s.n - 1);
  };
  std::vector<int64_t> s(e), d(e);
  for (int64_t i = 0; i < e; ++i) {
    s[i] = i == 0 ? src.n - 1 : i == 1 ? 0 : draw(src);
    d[i] = i == 0 ? dst.n - 1 : i == 1 ? 0 : draw(dst);
  }
  std::vector<int64_t> order(e);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = e - 1; i > 0; --i) std::swap(order[i], order[rng() % (i + 1)]);
  if (sorted)
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return d[a] < d[b]; });
  at::Tensor ei = at::empty({2, e}, at::kLong);
  int64_t* p = ei.data_ptr<int64_t>();
  for (int64_t i = 0; i < e; ++i) p[i] = s[order[i]], p[e + i] = d[order[i]];
  return int32 ? ei.to(at::kInt) : ei;
}

// Distinct rows (row i holds i): a wrong slice or gather cannot match by accident.
at::Tensor rows(int64_t n) {
  return at::arange(n, at::kDouble).unsqueeze(1);
}

void expect_sorted_like_reference(const at::Tensor& ei, std::optional<int64_t> max_value) {
  const auto out = sort_edge_index_by_dst(ei, max_value);
  const auto r = ref::sort_edge_index_by_dst(ei);
  expect_equal(out.edge_index, r.edge_index, "sorted edge_index");
  expect_equal(out.perm, r.perm, "perm");
  RC_ASSERT(is_edge_index_dst_sorted(ei) == ref::is_edge_index_dst_sorted(ei));
}

void expect_chunks_like_reference(int64_t n_src, int64_t n_dst, const at::Tensor& ei,
                                  int64_t chunks, bool claim_sorted) {
  const at::Tensor ea = rows(ei.size(1));
  const EdgeChunks out = sort_edges_1hop_chunks({n_src, n_dst}, ea, ei, chunks, claim_sorted);
  RC_ASSERT(out.edge_index.size() == static_cast<size_t>(chunks));
  // Many chunks: the reference's one-pass regrouping (its per-chunk form rescans every row).
  const auto r = ref::regroup_by_dst_block(ea, ei, n_dst, chunks);
  int64_t start = 0;
  for (int64_t i = 0; i < chunks; ++i) {
    const int64_t s = r.sizes[i];
    const std::string what = "chunk " + std::to_string(i);
    expect_equal(out.edge_index[i], r.edge_index.narrow(1, start, s), what + " edge_index");
    expect_equal(out.edge_attr[i], r.edge_attr.narrow(0, start, s), what + " edge_attr");
    start += s;
  }
}

void expect_dropped_like_reference(int64_t n_src, int64_t n_dst, const at::Tensor& ei) {
  const at::Tensor x = rows(n_src);
  const auto out = drop_unconnected_src_nodes(x, ei, {n_src, n_dst});
  const auto r = ref::drop_unconnected_src_nodes(x, ei);
  expect_equal(out.x_src, r.x_src, "x_src");
  expect_equal(out.edge_index, r.edge_index, "edge_index");
  expect_equal(out.kept_ids, r.kept_ids, "kept_ids");
}

void expect_partition_like_reference(int64_t n_src, int64_t n_dst, const at::Tensor& ei,
                                     int64_t parts, bool materialise) {
  const GraphPartition p = build_graph_partition(ei, parts, {n_src, n_dst});
  const auto rp = ref::build_graph_partition(ei, parts, n_src, n_dst);
  RC_ASSERT(p.dst_splits == rp.dst_splits);
  RC_ASSERT(p.edge_splits == rp.edge_splits);
  if (!materialise) return;
  const at::Tensor xs = rows(n_src), xd = rows(n_dst), ea = rows(ei.size(1));
  for (int64_t i = 0; i < parts; ++i) {
    const auto m = p.materialise(i, {xs, xd}, ea, ei);
    const auto r = ref::materialise(rp, i, xs, xd, ea, ei);
    const std::string part = "part " + std::to_string(i) + ": ";
    expect_equal(m.edge_index, r.edge_index, part + "edge_index");
    expect_equal(m.src_ids, r.src_ids, part + "src_ids");
    expect_equal(m.x_src, r.x_src, part + "x_src");
    expect_equal(m.x_dst, r.x_dst, part + "x_dst");
    expect_equal(m.edge_attr, r.edge_attr, part + "edge_attr");
  }
}

// ---- Key counts: one/two-pass, key widths, comparison sort, int32 end, 32-bit keys --------

RC_GTEST_PROP(ThresholdSortEdgeIndexByDst, MatchesReferenceAroundEveryKeyCountThreshold, ()) {
  ThreadGuard guard;
  draw_threads();
  const int64_t e = in_range(1, 2001, "E");
  const int64_t t =
      *one_of({kOnePassKeys, int64_t{1} << 13, int64_t{1} << 16, int64_t{1} << 17, int64_t{1} << 20,
               comparison_sort_above(e), kInt32End, int64_t{1} << 32})
           .as("key count threshold");
  const int64_t k = around(t, "key count - threshold", 1);
  const bool int32 = k <= kInt32End && coin("int32");
  const uint64_t seed = draw_seed();
  // The bound is the largest id + 1 (pinned to k - 1) or max_value = k.
  const bool by_max_value = coin("max_value = key count");
  const Side src{64, {}}, dst{k, boundary_anchors(k, seed)};
  const bool sorted = *rc::gen::weightedElement<bool>({{1, true}, {4, false}}).as("sorted");
  const at::Tensor ei = sparse_edges(src, dst, e, int32, sorted, seed);
  expect_sorted_like_reference(ei, by_max_value ? std::optional<int64_t>(k) : std::nullopt);
}

// ---- Edge counts: the chunks of every chunked pass -------------------------------------------

// E = c * kGrain + {-1, 0, 1}, c up to threads + 1: every chunk count and the step to the next.
int64_t draw_chunked_edge_count(int threads) {
  const int64_t c = in_range(1, threads + 2, "E / kGrain");
  return around(c * kGrain, "E - c * kGrain", 1);
}

RC_GTEST_PROP(ThresholdSortEdgeIndexByDst, MatchesReferenceAroundTheEdgeChunkThresholds, ()) {
  ThreadGuard guard;
  const int64_t e = draw_chunked_edge_count(draw_threads());
  // One-pass keys, two-pass keys (either side of 2^16), or a loose max_value beyond them.
  const int64_t k = coin("two-pass keys") ? around(int64_t{1} << 16, "n_dst - 2^16", 1)
                                          : in_range(1, kOnePassKeys + 1, "n_dst");
  const int64_t slack = *one_of({-1, 0, 1, 1 << 12}).as("max_value - n_dst");
  const uint64_t seed = draw_seed();
  const bool int32 = coin("int32");
  const at::Tensor ei =
      sparse_edges({1000, {}}, {k, boundary_anchors(k, seed)}, e, int32, coin("sorted"), seed);
  expect_sorted_like_reference(ei, slack < 0 ? std::nullopt : std::optional<int64_t>(k + slack));
}

// A decrease exactly at, or next to, the boundary of the chunks first_unsorted scans
// separately: the chunk that starts at it must compare across the boundary.
RC_GTEST_PROP(ThresholdIsEdgeIndexDstSorted, FindsADecreaseAtEveryChunkBoundary, ()) {
  ThreadGuard guard;
  const int64_t e = draw_chunked_edge_count(draw_threads());
  const int64_t k = in_range(2, 4, "chunks the boundary is cut for");
  const int64_t j = in_range(1, k, "boundary");
  const int64_t at_edge = std::clamp<int64_t>(around(e * j / k, "decrease - boundary"), 1, e - 1);
  const bool decrease = *rc::gen::weightedElement<bool>({{4, true}, {1, false}}).as("decrease");
  at::Tensor ei = at::stack({at::zeros({e}, at::kLong), at::arange(e, at::kLong)});
  if (decrease) {
    ei[1][at_edge] = at_edge - 1;
    ei[1][at_edge - 1] = at_edge;
  }
  if (coin("int32")) ei = ei.to(at::kInt);
  const at::Tensor wide = at::zeros({2, 2 * e}, ei.options());
  const at::Tensor view = wide.slice(1, 0, 2 * e, 2);  // a strided row
  view.copy_(ei);
  RC_ASSERT(is_edge_index_dst_sorted(ei) == !decrease);
  RC_ASSERT(is_edge_index_dst_sorted(view) == !decrease);
  RC_ASSERT(ref::is_edge_index_dst_sorted(ei) == !decrease);
  if (!decrease) return;
  // The debug check names the first decrease: the chunks agree on where it is.
  struct DebugChecksOn {
    bool saved = debug_checks();
    DebugChecksOn() { set_debug_checks(true); }
    ~DebugChecksOn() { set_debug_checks(saved); }
  } debug;
  std::string msg;
  try {
    build_graph_partition(view, 2, {1, e});
  } catch (const c10::ValueError& err) {
    msg = err.what_without_backtrace();
  }
  RC_ASSERT(msg.find("decreasing at edge " + std::to_string(at_edge) + " ") != std::string::npos);
}

RC_GTEST_PROP(ThresholdGraphPartition, MatchesReferenceAroundTheEdgeChunkThresholds, ()) {
  ThreadGuard guard;
  const int64_t e = draw_chunked_edge_count(draw_threads());
  const int64_t parts = in_range(1, 4, "parts");
  const int64_t n_dst = *one_of({100, kOnePassKeys + 1, 1 << 16}).as("n_dst");
  const int64_t n_src = around(2 * kGrain, "n_src - 2 * kGrain", 1);
  const uint64_t seed = draw_seed();
  const bool int32 = coin("int32");
  const at::Tensor ei = sparse_edges({n_src, boundary_anchors(n_src, seed)},
                                     {n_dst, part_anchors(n_dst, parts)}, e, int32, true, seed);
  expect_partition_like_reference(n_src, n_dst, ei, parts, true);
}

RC_GTEST_PROP(ThresholdSortEdges1hopChunks, MatchesReferenceAroundTheEdgeChunkThresholds, ()) {
  ThreadGuard guard;
  const int64_t e = draw_chunked_edge_count(draw_threads());
  const int64_t chunks = in_range(1, 5, "chunks");
  const int64_t n_dst = *one_of({chunks, 1000, 1 << 16}).as("n_dst");
  const uint64_t seed = draw_seed();
  const bool sorted = coin("sorted");
  const at::Tensor ei = sparse_edges({1000, {}}, {n_dst, part_anchors(n_dst, chunks)}, e,
                                     coin("int32"), sorted, seed);
  expect_chunks_like_reference(1000, n_dst, ei, chunks, sorted && coin("claim sorted"));
  expect_dropped_like_reference(1000, n_dst, ei);
}

// ---- Source counts: the chunks of the used-ids prefix scan -----------------------------------

RC_GTEST_PROP(ThresholdDropUnconnectedSrcNodes, MatchesReferenceAroundTheSourceScanThresholds, ()) {
  ThreadGuard guard;
  const int threads = draw_threads();
  const int64_t c = in_range(1, threads + 2, "n_src / kGrain");
  const bool wide = *rc::gen::weightedElement<bool>({{4, false}, {1, true}}).as("n_src ~ 2^20");
  const int64_t n_src = wide ? around(int64_t{1} << 20, "n_src - 2^20", 1)
                             : around(c * kGrain, "n_src - c * kGrain", 1);
  // Few edges (serial mark/relabel) or more than kGrain (parallel ones).
  const int64_t e = *one_of({1, 2, 1000, kGrain, kGrain + 1, 3 * kGrain}).as("E");
  const uint64_t seed = draw_seed();
  const bool int32 = coin("int32");
  const at::Tensor ei =
      sparse_edges({n_src, boundary_anchors(n_src, seed)}, {50, {}}, e, int32, true, seed);
  expect_dropped_like_reference(n_src, 50, ei);
  expect_partition_like_reference(n_src, 50, ei, in_range(1, 4, "parts"), true);
}

// ---- Destination counts: part counts, empty parts, 2^16, int32 end, 2^32 ----------------------

RC_GTEST_PROP(ThresholdBuildGraphPartition, MatchesReferenceAroundLargeDestinationCounts, ()) {
  const int64_t t = *one_of({1 << 16, 1 << 20, kInt32End, int64_t{1} << 32}).as("n_dst threshold");
  const int64_t n_dst = around(t, "n_dst - threshold", 1);
  const bool int32 = n_dst <= kInt32End && coin("int32");
  const int64_t parts = in_range(1, 10, "parts");
  const int64_t e = in_range(1, 1001, "E");
  const uint64_t seed = draw_seed();
  // Sources at the int32 end too: ids are only copied, never a mask size, below.
  const int64_t n_src = int32 ? kInt32End - 1 : n_dst;
  const at::Tensor ei =
      sparse_edges({n_src, {}}, {n_dst, part_anchors(n_dst, parts)}, e, int32, true, seed);
  // Materialising needs n_dst rows of x_dst: only while they are cheap.
  expect_partition_like_reference(n_src, n_dst, ei, parts, false);
  expect_chunks_like_reference(n_src, n_dst, ei, parts, coin("claim sorted"));
  expect_sorted_like_reference(ei, n_dst);
}

RC_GTEST_PROP(ThresholdGraphPartition, MaterialiseMatchesReferenceAround2To16Destinations, ()) {
  ThreadGuard guard;
  draw_threads();
  const int64_t n_dst = around(int64_t{1} << 16, "n_dst - 2^16", 1);
  const int64_t parts = in_range(1, 5, "parts");
  const int64_t e = in_range(1, 3001, "E");
  const uint64_t seed = draw_seed();
  const int64_t n_src = around(2 * kGrain, "n_src - 2 * kGrain", 1);
  const at::Tensor ei =
      sparse_edges({n_src, boundary_anchors(n_src, seed)}, {n_dst, part_anchors(n_dst, parts)}, e,
                   coin("int32"), true, seed);
  expect_partition_like_reference(n_src, n_dst, ei, parts, true);
}

// Part counts around the combine pass's grain, and n_dst around the part count (parts of size
// 0 and 1: the part size `small` is 0 below it) or a multiple of it (no big parts).
RC_GTEST_PROP(ThresholdSortEdges1hopChunks, MatchesReferenceAroundPartCountThresholds, ()) {
  ThreadGuard guard;
  draw_threads();
  const int64_t chunks =
      coin("many chunks") ? around(kCombineGrain, "chunks - 4096", 1) : in_range(1, 9, "chunks");
  const int64_t q = in_range(0, 4, "n_dst / chunks");
  const int64_t n_dst = around(std::max<int64_t>(q, 1) * chunks, "n_dst - q * chunks", 1);
  const int64_t e = in_range(1, 1501, "E");
  const uint64_t seed = draw_seed();
  const bool sorted = coin("sorted");
  const at::Tensor ei =
      sparse_edges({300, {}}, {n_dst, part_anchors(n_dst, chunks)}, e, coin("int32"), sorted, seed);
  expect_chunks_like_reference(300, n_dst, ei, chunks, sorted && coin("claim sorted"));
}

// ---- The kernel's own paths without a public caller ------------------------------------------

// counting_sort_perm with blocks == 0 sorts by value: histograms per chunk only while
// chunks * K stays within 4E (K around 2E: two chunks or one), a parallel combine above 4096
// keys, a comparison sort above 8E + 2^20.
RC_GTEST_PROP(ThresholdCountingSortPerm, MatchesStableSortAroundItsMemoryAndKeyBounds, ()) {
  ThreadGuard guard;
  const int64_t e = draw_chunked_edge_count(draw_threads());
  const int64_t t =
      *one_of({2 * e, kCombineGrain, comparison_sort_above(e)}).as("key count threshold");
  const int64_t k = around(t, "key count - threshold", 1);
  const uint64_t seed = draw_seed();
  const at::Tensor ei =
      sparse_edges({1, {}}, {k, boundary_anchors(k, seed)}, e, coin("int32"), false, seed);
  expect_equal(cpu::counting_sort_perm(ei[1], k), ref::sort_edge_index_by_dst(ei).perm, "perm");
}

}  // namespace
}  // namespace graphshard::props
