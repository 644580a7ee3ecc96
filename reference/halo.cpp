#include "halo.h"

#include <map>
#include <set>

namespace graphshard::reference {
namespace {

std::pair<int64_t, int64_t> range_of(const std::vector<int64_t>& splits, int q) {
  int64_t lo = 0;
  for (int i = 0; i < q; ++i) lo += splits[i];
  return {lo, lo + splits[q]};
}

int owner_of(const std::vector<int64_t>& splits, int64_t id) {
  for (int q = 0; q < static_cast<int>(splits.size()); ++q) {
    const auto [lo, hi] = range_of(splits, q);
    if (id >= lo && id < hi) return q;
  }
  return -1;
}

}  // namespace

RefHalo halo_info(const at::Tensor& edge_index, const std::vector<int64_t>& dst_splits, int r) {
  const at::Tensor ei = edge_index.to(at::kLong).contiguous();
  const int64_t e = ei.size(1);
  const int64_t* src = ei.data_ptr<int64_t>();
  const int64_t* dst = src + e;
  const int w = static_cast<int>(dst_splits.size());
  const auto [lo, hi] = range_of(dst_splits, r);
  RefHalo h;
  h.num_local = hi - lo;
  std::set<int64_t> halo;
  std::vector<std::set<int64_t>> needed_by(w);  // needed_by[q]: rank r's nodes q's edges use
  for (int64_t i = 0; i < e; ++i) {
    const int q = owner_of(dst_splits, dst[i]);
    const bool src_mine = src[i] >= lo && src[i] < hi;
    if (q == r && !src_mine) halo.insert(src[i]);
    if (q != r && src_mine) needed_by[q].insert(src[i] - lo);
  }
  h.halo_global.assign(halo.begin(), halo.end());
  h.recv_counts.assign(w, 0);
  std::map<int64_t, int64_t> local_of;
  for (size_t j = 0; j < h.halo_global.size(); ++j) {
    h.recv_counts[owner_of(dst_splits, h.halo_global[j])]++;
    local_of[h.halo_global[j]] = h.num_local + static_cast<int64_t>(j);
  }
  for (int q = 0; q < w; ++q) h.send_local.emplace_back(needed_by[q].begin(), needed_by[q].end());
  std::vector<int64_t> s_local, d_local;
  for (int64_t i = 0; i < e; ++i) {
    if (dst[i] < lo || dst[i] >= hi) continue;
    s_local.push_back(src[i] >= lo && src[i] < hi ? src[i] - lo : local_of.at(src[i]));
    d_local.push_back(dst[i] - lo);
  }
  const int64_t n = static_cast<int64_t>(s_local.size());
  h.edge_index_local = at::empty({2, n}, at::kLong);
  for (int64_t i = 0; i < n; ++i) {
    h.edge_index_local[0][i] = s_local[i];
    h.edge_index_local[1][i] = d_local[i];
  }
  return h;
}

at::Tensor halo_forward(const at::Tensor& x_full, const std::vector<int64_t>& dst_splits,
                        const RefHalo& h, int r) {
  const auto [lo, hi] = range_of(dst_splits, r);
  std::vector<at::Tensor> rows{x_full.narrow(0, lo, hi - lo)};
  for (int64_t g : h.halo_global) rows.push_back(x_full.narrow(0, g, 1));
  return at::cat(rows, 0);
}

at::Tensor halo_backward(const std::vector<at::Tensor>& ys, const std::vector<RefHalo>& halos,
                         const std::vector<int64_t>& dst_splits, int r) {
  const at::ScalarType type = ys[r].scalar_type();
  const bool narrow16 = type == at::kHalf || type == at::kBFloat16;
  const at::ScalarType acc = narrow16 ? at::kFloat : type;
  const auto [lo, hi] = range_of(dst_splits, r);
  std::vector<int64_t> shape = ys[r].sizes().vec();
  shape[0] = hi - lo;
  at::Tensor g = at::zeros(shape, ys[r].options().dtype(acc));
  // Row by row, rank by rank in rank order: every rank's gradient of this rank's nodes.
  for (size_t q = 0; q < halos.size(); ++q) {
    if (static_cast<int>(q) == r) {
      g += ys[r].narrow(0, 0, hi - lo).to(acc);
      continue;
    }
    const RefHalo& hq = halos[q];
    for (size_t j = 0; j < hq.halo_global.size(); ++j) {
      const int64_t gid = hq.halo_global[j];
      if (gid < lo || gid >= hi) continue;
      g[gid - lo] += ys[q][hq.num_local + static_cast<int64_t>(j)].to(acc);
    }
  }
  return g.to(type);
}

}  // namespace graphshard::reference
