// partition_graph (graphshard/partitioners.h): argument checks, the destination parts of each
// scheme (partition_schemes.h), the sources' parts, and the renumbering.
#include "graphshard/partitioners.h"

#include <numeric>
#include <stdexcept>

#include <ATen/ATen.h>

#include "graph_internal.h"
#include "partition_schemes.h"

namespace graphshard {

using detail::check;
namespace schemes = detail::schemes;

namespace {

constexpr const char* kFn = "partition_graph";

std::vector<int64_t> inverse_of(const std::vector<int64_t>& perm) {
  std::vector<int64_t> inv(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inv[perm[i]] = static_cast<int64_t>(i);
  return inv;
}

void check_coordinates(const PartitionOptions& o, int64_t n_dst) {
  const at::Tensor& c = o.dst_coords;
  const std::string expected = "[" + std::to_string(n_dst) +
                               ", 3] floating-point coordinates of the destinations (scheme " +
                               to_string(o.scheme) + ")";
  check(c.defined(), kFn, "options.dst_coords", expected, "none", 0);
  const bool shape_ok = c.dim() == 2 && c.size(0) == n_dst && c.size(1) == 3 &&
                        at::isFloatingType(c.scalar_type());
  check(shape_ok, kFn, "options.dst_coords", expected,
        detail::to_str(c.sizes()) + " " + c10::toString(c.scalar_type()), 0);
  check(c.numel() == 0 || at::isfinite(c).all().item<bool>(), kFn, "options.dst_coords",
        "finite coordinates", "NaN or infinite values", 0);
}

// The edges as the schemes read them: int64 on the CPU, row 0 sources, row 1 destinations.
struct Edges {
  at::Tensor owner;  // [2, E] contiguous
  const int64_t* src = nullptr;
  const int64_t* dst = nullptr;
  int64_t count = 0;
};

// Destinations in their new order (perm[new] = old) and the part sizes, by scheme.
schemes::PartOrder destination_order(const PartitionOptions& o, const Edges& e,
                                     std::pair<int64_t, int64_t> nodes, int64_t parts,
                                     const std::vector<int64_t>& degree) {
  const int64_t n = nodes.second;
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  schemes::PartOrder out;
  auto cut_in_order = [&] {
    std::vector<int64_t> off(n + 1, 0);
    for (int64_t i = 0; i < n; ++i) off[i + 1] = off[i] + degree[order[i]];
    out.sizes = schemes::edge_balanced_sizes(off, parts);
    out.perm = std::move(order);
  };
  const at::Tensor xyz = scheme_needs_coordinates(o.scheme)
                             ? o.dst_coords.to(at::kCPU).to(at::kDouble).contiguous()
                             : at::Tensor();
  switch (o.scheme) {
    case PartitionScheme::kContiguous:
      out.perm = std::move(order);
      out.sizes = balanced_sizes(n, parts);
      break;
    case PartitionScheme::kEdgeBalanced:
      cut_in_order();
      break;
    case PartitionScheme::kHilbert: {
      const auto keys = schemes::hilbert_keys(xyz.data_ptr<double>(), n);
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return keys[a] < keys[b]; });
      cut_in_order();
      break;
    }
    case PartitionScheme::kLatLonBoxes:
      out = schemes::order_by_part(
          schemes::latlon_box_parts(xyz.data_ptr<double>(), degree, n, parts), parts);
      break;
    case PartitionScheme::kMetis: {
      const schemes::Adjacency adj =
          o.plain ? schemes::adjacency_from_pairs(n, std::vector<int64_t>(e.src, e.src + e.count),
                                                  std::vector<int64_t>(e.dst, e.dst + e.count))
                  : schemes::shared_source_adjacency(nodes.first, n, e.src, e.dst, e.count);
      std::vector<int64_t> part;
      try {
        part = schemes::metis_parts(adj, degree, parts, o.seed);
      } catch (const std::runtime_error& err) {
        detail::fail(kFn, "options.scheme", "a graph METIS can partition (metis)", err.what(), 0);
      }
      out = schemes::order_by_part(part, parts);
      break;
    }
  }
  return out;
}

}  // namespace

RenumberedGraph partition_graph(const at::Tensor& edge_index, std::pair<int64_t, int64_t> nodes,
                                int64_t parts, const PartitionOptions& o) {
  detail::check_edge_index(kFn, edge_index, 0);
  detail::check_count(kFn, "num_nodes.first (n_src)", nodes.first, 0);
  detail::check_count(kFn, "num_nodes.second (n_dst)", nodes.second, 0);
  check(parts >= 1, kFn, "num_parts", "num_parts >= 1", parts, 0);
  check(!o.plain || nodes.first == nodes.second, kFn, "options.plain",
        "n_src == n_dst for a plain graph",
        "n_src " + std::to_string(nodes.first) + ", n_dst " + std::to_string(nodes.second), 0);
  if (scheme_needs_coordinates(o.scheme)) check_coordinates(o, nodes.second);
  detail::check_ids(kFn, edge_index, nodes.first, nodes.second, 0);

  Edges e;
  e.owner = edge_index.to(at::kCPU).to(at::kLong).contiguous();
  e.count = e.owner.size(1);
  e.src = e.owner.data_ptr<int64_t>();
  e.dst = e.src + e.count;
  const int64_t n_src = nodes.first, n_dst = nodes.second;
  std::vector<int64_t> degree(n_dst, 0);
  for (int64_t j = 0; j < e.count; ++j) ++degree[e.dst[j]];

  const schemes::PartOrder d = destination_order(o, e, nodes, parts, degree);
  std::vector<int64_t> dst_part(n_dst), edge_splits(parts, 0);
  int64_t at = 0;
  for (int64_t p = 0; p < parts; ++p) {
    for (int64_t k = 0; k < d.sizes[p]; ++k, ++at) {
      dst_part[d.perm[at]] = p;
      edge_splits[p] += degree[d.perm[at]];
    }
  }
  schemes::PartOrder s;
  if (o.plain) {
    s = d;
  } else if (o.scheme == PartitionScheme::kContiguous) {
    s.perm.resize(n_src);
    std::iota(s.perm.begin(), s.perm.end(), 0);
    s.sizes = balanced_sizes(n_src, parts);
  } else {
    s = schemes::order_by_part(
        schemes::follow_destinations(n_src, e.src, e.dst, e.count, dst_part, parts), parts);
  }

  const std::vector<int64_t> src_inv = inverse_of(s.perm), dst_inv = inverse_of(d.perm);
  at::Tensor relabelled = at::empty({2, e.count}, at::kLong);
  int64_t* rs = relabelled.data_ptr<int64_t>();
  for (int64_t j = 0; j < e.count; ++j) {
    rs[j] = src_inv[e.src[j]];
    rs[e.count + j] = dst_inv[e.dst[j]];
  }
  // Stable: the edges of one destination keep their input order.
  const SortedEdgeIndex sorted = detail::sort_by_dst_impl(kFn, relabelled, n_dst, 0);

  const auto device = edge_index.device();
  RenumberedGraph g;
  g.scheme = o.scheme;
  g.partition.num_nodes = nodes;
  g.partition.num_edges = e.count;
  g.partition.num_parts = parts;
  g.partition.dst_splits = d.sizes;
  g.partition.edge_splits = std::move(edge_splits);
  g.src_splits = s.sizes;
  g.edge_index = sorted.edge_index.to(edge_index.scalar_type()).to(device);
  g.edge_perm = sorted.perm.to(device);
  g.src_perm = at::tensor(s.perm, at::kLong).to(device);
  g.dst_perm = at::tensor(d.perm, at::kLong).to(device);
  g.src_inverse = at::tensor(src_inv, at::kLong).to(device);
  g.dst_inverse = at::tensor(dst_inv, at::kLong).to(device);
  return g;
}

}  // namespace graphshard
