// Validation and device dispatch shared by the graph functions: CPU tensors go to the kernels
// of core/cpu, CUDA tensors to those of core/cuda where one exists, other devices (and the CUDA
// steps without a kernel of their own) to whole-tensor ATen formulations with the same results.
#include <atomic>
#include <cstdlib>
#include <string>

#include <ATen/ATen.h>

#include "graph_internal.h"
#ifdef GRAPHSHARD_WITH_CUDA
#include "../cuda/kernels.h"
#endif

namespace graphshard {
namespace {
std::atomic<int> g_debug_checks{-1};  // -1: not decided yet (read the environment)

bool env_debug_checks() {
  const char* v = std::getenv("GRAPHSHARD_DEBUG_CHECKS");
  if (!v) return false;
  const std::string s(v);
  return s == "1" || s == "true" || s == "TRUE" || s == "on" || s == "ON" || s == "yes";
}
}  // namespace

void set_debug_checks(bool on) {
  g_debug_checks.store(on ? 1 : 0);
}

bool debug_checks() {
  int v = g_debug_checks.load();
  if (v < 0) {
    int expected = -1;
    g_debug_checks.compare_exchange_strong(expected, env_debug_checks() ? 1 : 0);
    v = g_debug_checks.load();
  }
  return v == 1;
}

namespace detail {

std::string describe(const at::Tensor& t) {
  std::ostringstream os;
  os << t.scalar_type() << t.sizes();
  return os.str();
}

void check_edge_index(const char* fn, const at::Tensor& ei, int rank) {
  if (!ei.defined()) fail(fn, "edge_index", "a [2, E] int64 or int32 tensor", "undefined", rank);
  const bool int_type = ei.scalar_type() == at::kLong || ei.scalar_type() == at::kInt;
  if (ei.dim() != 2 || ei.size(0) != 2 || !int_type) {
    fail(fn, "edge_index", "a [2, E] int64 or int32 tensor", describe(ei), rank);
  }
}

void check_count(const char* fn, const char* arg, int64_t n, int rank) {
  check(n >= 0, fn, arg, "a count >= 0", n, rank);
}

void check_rows(const char* fn, const char* arg, const at::Tensor& t, int64_t rows, int rank) {
  if (!t.defined() || t.dim() < 1 || t.size(0) != rows) {
    fail(fn, arg, "a tensor with " + std::to_string(rows) + " rows (size(0))",
         t.defined() ? describe(t) : std::string("undefined"), rank);
  }
}

namespace {
void check_row_range(const char* fn, const at::Tensor& row, const char* what, int64_t lo,
                     int64_t hi, int rank) {
  if (row.numel() == 0) return;
  const auto [a, b] = id_range(row);
  if (a < lo || b >= hi) {
    fail(fn, "edge_index",
         std::string(what) + " ids in [" + std::to_string(lo) + ", " + std::to_string(hi) + ")",
         std::string(what) + " ids in [" + std::to_string(a) + ", " + std::to_string(b) + "]",
         rank);
  }
}
}  // namespace

void check_ids(const char* fn, const at::Tensor& ei, int64_t n_src, int64_t n_dst, int rank) {
  check_row_range(fn, ei.select(0, 0), "source", 0, n_src, rank);
  check_row_range(fn, ei.select(0, 1), "destination", 0, n_dst, rank);
}

void check_dst_range(const char* fn, const at::Tensor& ei, int64_t lo, int64_t hi, int rank) {
  check_row_range(fn, ei.select(0, 1), "destination", lo, hi, rank);
}

void check_dst_ends(const char* fn, const at::Tensor& ei, int64_t lo, int64_t hi, int rank) {
  const int64_t e = ei.size(1);
  if (e == 0) return;
  // One host synchronisation (device rows): both ends are compared on the host.
  const at::Tensor ends =
      at::stack({ei.select(0, 1).select(0, 0), ei.select(0, 1).select(0, e - 1)})
          .to(at::kCPU, at::kLong);
  const int64_t first = ends[0].item<int64_t>(), last = ends[1].item<int64_t>();
  if (first < lo || last >= hi) {
    fail(fn, "edge_index",
         "dst-sorted destination ids in [" + std::to_string(lo) + ", " + std::to_string(hi) + ")",
         "first " + std::to_string(first) + ", last " + std::to_string(last), rank);
  }
}

void check_sorted(const char* fn, const at::Tensor& ei, int rank) {
  const int64_t i = first_unsorted(ei.select(0, 1));
  if (i >= 0) {
    const at::Tensor row = ei.select(0, 1);
    fail(fn, "edge_index", "edges sorted by destination (row 1 non-decreasing)",
         "row 1 decreasing at edge " + std::to_string(i) + " (" +
             std::to_string(row[i - 1].item<int64_t>()) + " > " +
             std::to_string(row[i].item<int64_t>()) + ")",
         rank);
  }
}

std::pair<int64_t, int64_t> id_range(const at::Tensor& row) {
  const auto [mn, mx] = at::aminmax(row);
  if (row.device().is_cpu()) return {mn.item<int64_t>(), mx.item<int64_t>()};
  const at::Tensor both = at::stack({mn, mx}).to(at::kCPU, at::kLong);  // read back together
  return {both[0].item<int64_t>(), both[1].item<int64_t>()};
}

int64_t first_unsorted(const at::Tensor& row) {
  if (row.device().is_cpu()) return cpu::first_unsorted(row);
  const int64_t n = row.numel();
  if (n < 2) return -1;
#ifdef GRAPHSHARD_WITH_CUDA
  if (row.is_cuda() && cuda_kernels::is_non_decreasing(row)) return -1;
#endif
  const at::Tensor bad = (row.narrow(0, 1, n - 1) < row.narrow(0, 0, n - 1)).nonzero();
  return bad.numel() == 0 ? -1 : bad[0][0].item<int64_t>() + 1;
}

at::Tensor stable_sort_perm(const at::Tensor& row, int64_t num_keys, int64_t blocks,
                            std::vector<int64_t>* key_counts) {
  if (row.device().is_cpu()) return cpu::counting_sort_perm(row, num_keys, blocks, key_counts);
#ifdef GRAPHSHARD_WITH_CUDA
  if (row.is_cuda()) return cuda_kernels::stable_sort_perm(row, num_keys, blocks, key_counts);
#endif
  at::Tensor keys = row.to(at::kLong);
  if (blocks > 0) {
    const int64_t small = num_keys / blocks, big = small + 1, cut = (num_keys % blocks) * big;
    keys = at::where(keys < cut, keys.div(big, "floor"),
                     (keys - cut).div(std::max<int64_t>(small, 1), "floor") + cut / big);
    if (key_counts) {
      const at::Tensor c = at::bincount(keys, {}, blocks).to(at::kCPU, at::kLong);
      key_counts->assign(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + blocks);
    }
  }
  return std::get<1>(at::sort(keys, /*stable=*/true, /*dim=*/0, /*descending=*/false));
}

std::vector<int64_t> sorted_edge_splits(const at::Tensor& ei,
                                        const std::vector<int64_t>& dst_splits) {
  const int64_t parts = static_cast<int64_t>(dst_splits.size());
  std::vector<int64_t> bounds;  // the parts' interior starting ids
  int64_t s = 0;
  for (int64_t i = 0; i + 1 < parts; ++i) bounds.push_back(s += dst_splits[i]);
  const at::Tensor row = ei.select(0, 1);
  std::vector<int64_t> lb;
  if (row.device().is_cpu()) {
    lb = cpu::lower_bounds(row, bounds);
  } else if (!bounds.empty()) {
    const at::Tensor b = at::tensor(bounds, row.options().dtype(at::kLong)).to(row.scalar_type());
    // Host synchronisation: the splits are output sizes, known on the host.
    const at::Tensor r = at::searchsorted(row.contiguous(), b).to(at::kCPU, at::kLong);
    lb.assign(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
  }
  std::vector<int64_t> splits(parts);
  int64_t prev = 0;
  for (int64_t i = 0; i < parts; ++i) {
    const int64_t next = i + 1 < parts ? lb[i] : ei.size(1);
    splits[i] = next - prev;
    prev = next;
  }
  return splits;
}

cpu::UsedIds used_sources(const char* fn, const at::Tensor& src_row, int64_t n, int rank,
                          const at::Tensor& relabelled_into) {
  if (!src_row.device().is_cpu() && relabelled_into.defined()) {
    cpu::UsedIds u = used_sources(fn, src_row, n, rank);
    u.relabelled = relabelled_into.copy_(u.relabelled);
    return u;
  }
  if (src_row.device().is_cpu()) {
    cpu::UsedIds u = cpu::used_ids(src_row, n, relabelled_into);
    if (!u.in_range) {
      const auto [mn, mx] = id_range(src_row);
      fail(fn, "edge_index", "source ids in [0, " + std::to_string(n) + ")",
           "source ids in [" + std::to_string(mn) + ", " + std::to_string(mx) + "]", rank);
    }
    return u;
  }
  check_row_range(fn, src_row, "source", 0, n, rank);
#ifdef GRAPHSHARD_WITH_CUDA
  if (src_row.is_cuda()) return cuda_kernels::used_ids(src_row, n);
#endif
  const at::Tensor idx = src_row.to(at::kLong);
  const at::Tensor mask = at::zeros({n}, idx.options().dtype(at::kBool)).index_fill_(0, idx, true);
  cpu::UsedIds u;
  u.kept = mask.nonzero().squeeze(1).to(src_row.scalar_type());
  const at::Tensor new_id = mask.to(at::kLong).cumsum(0) - 1;
  u.relabelled = new_id.index_select(0, idx).to(src_row.scalar_type());
  return u;
}

LocalEdges local_edge_index(const char* fn, const at::Tensor& edges, int64_t n_src, int64_t dst_lo,
                            int rank) {
  LocalEdges out;
  out.edge_index = at::empty({2, edges.size(1)}, edges.options());
  out.kept = used_sources(fn, edges.select(0, 0), n_src, rank, out.edge_index.select(0, 0)).kept;
  at::Tensor dst = out.edge_index.select(0, 1);
  at::sub_out(dst, edges.select(0, 1), at::scalar_tensor(dst_lo, edges.options()));
  return out;
}

}  // namespace detail
}  // namespace graphshard
