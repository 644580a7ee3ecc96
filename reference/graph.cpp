// Naive graph reference: every function is a loop over the edges.
#include "graph.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <set>

namespace graphshard::reference {
namespace {

std::vector<int64_t> row(const at::Tensor& edge_index, int64_t r) {
  const at::Tensor t = edge_index[r].to(at::kLong).contiguous();
  return std::vector<int64_t>(t.data_ptr<int64_t>(), t.data_ptr<int64_t>() + t.numel());
}

at::Tensor index_tensor(const std::vector<int64_t>& v) {
  return at::tensor(v, at::TensorOptions().dtype(at::kLong))
      .reshape({static_cast<int64_t>(v.size())});
}

at::Tensor edge_tensor(const std::vector<int64_t>& src, const std::vector<int64_t>& dst,
                       at::ScalarType dtype) {
  const int64_t e = static_cast<int64_t>(src.size());
  at::Tensor out = at::empty({2, e}, at::TensorOptions().dtype(at::kLong));
  auto a = out.accessor<int64_t, 2>();
  for (int64_t i = 0; i < e; ++i) {
    a[0][i] = src[i];
    a[1][i] = dst[i];
  }
  return out.to(dtype);
}

// Edge ids (in input order) whose destination lies in [lo, hi).
std::vector<int64_t> edges_in(const std::vector<int64_t>& dst, int64_t lo, int64_t hi) {
  std::vector<int64_t> ids;
  for (size_t i = 0; i < dst.size(); ++i) {
    if (dst[i] >= lo && dst[i] < hi) ids.push_back(static_cast<int64_t>(i));
  }
  return ids;
}

at::Tensor select_edges(const at::Tensor& edge_index, const std::vector<int64_t>& ids) {
  const auto src = row(edge_index, 0), dst = row(edge_index, 1);
  std::vector<int64_t> s, d;
  for (int64_t i : ids) {
    s.push_back(src[i]);
    d.push_back(dst[i]);
  }
  return edge_tensor(s, d, edge_index.scalar_type());
}

}  // namespace

std::vector<int64_t> graph_balanced(int64_t n, int64_t parts) {
  std::vector<int64_t> sizes;
  for (int64_t i = 0; i < parts; ++i) sizes.push_back(n / parts + (i < n % parts ? 1 : 0));
  return sizes;
}

RefSorted sort_edge_index_by_dst(const at::Tensor& edge_index) {
  const auto dst = row(edge_index, 1);
  std::vector<int64_t> perm(dst.size());
  std::iota(perm.begin(), perm.end(), 0);
  std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) { return dst[a] < dst[b]; });
  return {select_edges(edge_index, perm), index_tensor(perm)};
}

bool is_edge_index_dst_sorted(const at::Tensor& edge_index) {
  const auto dst = row(edge_index, 1);
  for (size_t i = 1; i < dst.size(); ++i) {
    if (dst[i - 1] > dst[i]) return false;
  }
  return true;
}

RefPartition build_graph_partition(const at::Tensor& edge_index, int64_t num_parts, int64_t n_src,
                                   int64_t n_dst) {
  RefPartition p;
  p.n_src = n_src;
  p.n_dst = n_dst;
  p.num_parts = num_parts;
  p.dst_splits = graph_balanced(n_dst, num_parts);
  p.edge_splits.assign(num_parts, 0);
  const auto dst = row(edge_index, 1);
  p.num_edges = static_cast<int64_t>(dst.size());
  for (int64_t d : dst) {
    int64_t lo = 0;
    for (int64_t q = 0; q < num_parts; ++q) {
      if (d >= lo && d < lo + p.dst_splits[q]) ++p.edge_splits[q];
      lo += p.dst_splits[q];
    }
  }
  return p;
}

RefSubgraph subgraph(const at::Tensor& x_src, const at::Tensor& x_dst, const at::Tensor& edge_attr,
                     const at::Tensor& edge_index, int64_t dst_lo, int64_t dst_hi,
                     const std::optional<RefPair>& cond) {
  const auto src = row(edge_index, 0), dst = row(edge_index, 1);
  const auto ids = edges_in(dst, dst_lo, dst_hi);
  std::set<int64_t> used;
  for (int64_t i : ids) used.insert(src[i]);
  std::map<int64_t, int64_t> new_id;
  std::vector<int64_t> kept;
  for (int64_t s : used) {
    new_id[s] = static_cast<int64_t>(kept.size());
    kept.push_back(s);
  }
  std::vector<int64_t> s, d;
  for (int64_t i : ids) {
    s.push_back(new_id.at(src[i]));
    d.push_back(dst[i] - dst_lo);
  }
  RefSubgraph out;
  const at::Tensor kept_t = index_tensor(kept);
  out.src_ids = kept_t.to(edge_index.scalar_type());
  out.edge_index = edge_tensor(s, d, edge_index.scalar_type());
  out.x_src = x_src.index_select(0, kept_t);
  out.x_dst = x_dst.slice(0, dst_lo, dst_hi);
  out.edge_attr = edge_attr.index_select(0, index_tensor(ids));
  if (cond) {
    out.cond = RefPair{cond->first.index_select(0, kept_t), cond->second.slice(0, dst_lo, dst_hi)};
  }
  return out;
}

RefSubgraph materialise(const RefPartition& p, int64_t i, const at::Tensor& x_src,
                        const at::Tensor& x_dst, const at::Tensor& edge_attr,
                        const at::Tensor& edge_index, const std::optional<RefPair>& cond) {
  int64_t lo = 0;
  for (int64_t q = 0; q < i; ++q) lo += p.dst_splits[q];
  return subgraph(x_src, x_dst, edge_attr, edge_index, lo, lo + p.dst_splits[i], cond);
}

RefEdges sort_edges(const at::Tensor& edge_attr, const at::Tensor& edge_index) {
  const RefSorted s = sort_edge_index_by_dst(edge_index);
  return {edge_attr.index_select(0, s.perm), s.edge_index, {}};
}

RefEdges regroup_by_dst_block(const at::Tensor& edge_attr, const at::Tensor& edge_index,
                              int64_t n_dst, int64_t parts) {
  const auto dst = row(edge_index, 1);
  const auto splits = graph_balanced(n_dst, parts);
  std::vector<int64_t> order;
  RefEdges out;
  int64_t lo = 0;
  for (int64_t q = 0; q < parts; ++q) {
    const auto ids = edges_in(dst, lo, lo + splits[q]);
    order.insert(order.end(), ids.begin(), ids.end());
    out.sizes.push_back(static_cast<int64_t>(ids.size()));
    lo += splits[q];
  }
  out.edge_index = select_edges(edge_index, order);
  out.edge_attr = edge_attr.index_select(0, index_tensor(order));
  return out;
}

RefChunks sort_edges_1hop_chunks(int64_t n_dst, const at::Tensor& edge_attr,
                                 const at::Tensor& edge_index, int64_t num_chunks) {
  const auto dst = row(edge_index, 1);
  const auto splits = graph_balanced(n_dst, num_chunks);
  RefChunks out;
  int64_t lo = 0;
  for (int64_t q = 0; q < num_chunks; ++q) {
    const auto ids = edges_in(dst, lo, lo + splits[q]);
    out.edge_index.push_back(select_edges(edge_index, ids));
    out.edge_attr.push_back(edge_attr.index_select(0, index_tensor(ids)));
    lo += splits[q];
  }
  return out;
}

RefConnected drop_unconnected_src_nodes(const at::Tensor& x_src, const at::Tensor& edge_index) {
  const auto src = row(edge_index, 0), dst = row(edge_index, 1);
  const std::set<int64_t> used(src.begin(), src.end());
  std::map<int64_t, int64_t> new_id;
  std::vector<int64_t> kept;
  for (int64_t s : used) {
    new_id[s] = static_cast<int64_t>(kept.size());
    kept.push_back(s);
  }
  std::vector<int64_t> s;
  for (int64_t v : src) s.push_back(new_id.at(v));
  RefConnected out;
  const at::Tensor kept_t = index_tensor(kept);
  out.kept_ids = kept_t.to(edge_index.scalar_type());
  out.edge_index = edge_tensor(s, dst, edge_index.scalar_type());
  out.x_src = x_src.index_select(0, kept_t);
  return out;
}

}  // namespace graphshard::reference
