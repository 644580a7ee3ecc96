// Local (communication-free) graph functions: sorting, partitioning, materialising a part,
// chunking, dropping unconnected sources.
#include <algorithm>
#include <ostream>
#include <sstream>
#include <tuple>

#include <ATen/ATen.h>

#include "graph_internal.h"

namespace graphshard {

using detail::check;
using detail::check_count;
using detail::check_edge_index;
using detail::check_rows;
using detail::fail;

namespace detail {

SortedEdgeIndex sort_by_dst_impl(const char* fn, const at::Tensor& ei,
                                 std::optional<int64_t> max_value, int rank) {
  check_edge_index(fn, ei, rank);
  if (max_value) check(*max_value >= 0, fn, "max_value", "a bound >= 0", *max_value, rank);
  const at::Tensor dst = ei.select(0, 1);
  int64_t bound = max_value.value_or(0);
  if (ei.size(1) > 0) {
    // Host synchronisation (device ids): the range is checked, and bounds the keys, here.
    const auto [lo, hi] = id_range(dst);
    if (!max_value) bound = std::max<int64_t>(hi + 1, 0);
    if (lo < 0 || hi >= bound) {
      fail(fn, "edge_index",
           "destination ids in [0, " + std::to_string(bound) + ")" +
               (max_value ? " (max_value)" : ""),
           "destination ids in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]", rank);
    }
  }
  SortedEdgeIndex out;
  if (ei.device().is_cpu()) {
    std::tie(out.edge_index, out.perm) = cpu::counting_sort_edges(ei, bound);
  } else {
    out.perm = stable_sort_perm(dst, bound, 0);
    out.edge_index = ei.index_select(1, out.perm);
  }
  return out;
}

GraphPartition build_graph_partition_impl(const char* fn, const at::Tensor& ei, int64_t num_parts,
                                          std::pair<int64_t, int64_t> nodes, int rank) {
  check_edge_index(fn, ei, rank);
  check(num_parts >= 1, fn, "num_parts", "num_parts >= 1", num_parts, rank);
  check_count(fn, "num_nodes.first (n_src)", nodes.first, rank);
  check_count(fn, "num_nodes.second (n_dst)", nodes.second, rank);
  check_dst_ends(fn, ei, 0, nodes.second, rank);
  if (debug_checks()) {
    check_sorted(fn, ei, rank);
    check_ids(fn, ei, nodes.first, nodes.second, rank);
  }
  GraphPartition p;
  p.num_nodes = nodes;
  p.num_edges = ei.size(1);
  p.num_parts = num_parts;
  p.dst_splits = balanced_sizes(nodes.second, num_parts);
  p.edge_splits = sorted_edge_splits(ei, p.dst_splits);
  return p;
}

}  // namespace detail

SortedEdgeIndex sort_edge_index_by_dst(const at::Tensor& edge_index,
                                       std::optional<int64_t> max_value) {
  return detail::sort_by_dst_impl("sort_edge_index_by_dst", edge_index, max_value, 0);
}

bool is_edge_index_dst_sorted(const at::Tensor& edge_index) {
  check_edge_index("is_edge_index_dst_sorted", edge_index, 0);
  return detail::first_unsorted(edge_index.select(0, 1)) < 0;
}

GraphPartition build_graph_partition(const at::Tensor& edge_index, int64_t num_parts,
                                     std::pair<int64_t, int64_t> num_nodes) {
  return detail::build_graph_partition_impl("build_graph_partition", edge_index, num_parts,
                                            num_nodes, 0);
}

std::string GraphPartition::to_string() const {
  std::ostringstream os;
  os << "GraphPartition(num_nodes=(" << num_nodes.first << ", " << num_nodes.second
     << "), num_edges=" << num_edges << ", num_parts=" << num_parts
     << ", dst_splits=" << detail::str(dst_splits) << ", edge_splits=" << detail::str(edge_splits)
     << ")";
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const GraphPartition& p) {
  return os << p.to_string();
}

MaterialisedPartition GraphPartition::materialise(int64_t partition_id, const PairTensor& x,
                                                  const at::Tensor& edge_attr,
                                                  const at::Tensor& edge_index,
                                                  const std::optional<PairTensor>& cond) const {
  constexpr const char* fn = "GraphPartition::materialise";
  const int rank = 0;
  check(partition_id >= 0 && partition_id < num_parts, fn, "partition_id",
        "an id in [0, " + std::to_string(num_parts) + ")", partition_id, rank);
  const auto non_negative = [](const std::vector<int64_t>& v) {
    return std::all_of(v.begin(), v.end(), [](int64_t s) { return s >= 0; });
  };
  const bool consistent = static_cast<int64_t>(dst_splits.size()) == num_parts &&
                          static_cast<int64_t>(edge_splits.size()) == num_parts &&
                          non_negative(dst_splits) && non_negative(edge_splits) &&
                          num_nodes.first >= 0 && total(dst_splits) == num_nodes.second &&
                          total(edge_splits) == num_edges;
  check(consistent, fn, "partition",
        "n_src >= 0 and num_parts non-negative splits summing to n_dst and num_edges", to_string(),
        rank);
  check_edge_index(fn, edge_index, rank);
  check(edge_index.size(1) == num_edges, fn, "edge_index",
        std::to_string(num_edges) + " edges (partition.num_edges)", edge_index.size(1), rank);
  check_rows(fn, "x.first (x_src)", x.first, num_nodes.first, rank);
  check_rows(fn, "x.second (x_dst)", x.second, num_nodes.second, rank);
  check_rows(fn, "edge_attr", edge_attr, num_edges, rank);
  if (cond) {
    check_rows(fn, "cond.first (cond_src)", cond->first, num_nodes.first, rank);
    check_rows(fn, "cond.second (cond_dst)", cond->second, num_nodes.second, rank);
  }
  if (debug_checks()) {
    detail::check_sorted(fn, edge_index, rank);
    detail::check_ids(fn, edge_index, num_nodes.first, num_nodes.second, rank);
  }
  const auto [elo, ehi] = partition_range(edge_splits, partition_id);
  const auto [dlo, dhi] = partition_range(dst_splits, partition_id);
  const at::Tensor part = edge_index.narrow(1, elo, ehi - elo);
  detail::check_dst_ends(fn, part, dlo, dhi, rank);
  const detail::LocalEdges used = detail::local_edge_index(fn, part, num_nodes.first, dlo, rank);

  MaterialisedPartition out;
  out.src_ids = used.kept;
  out.edge_index = used.edge_index;
  out.x_src = x.first.index_select(0, used.kept);
  out.x_dst = x.second.narrow(0, dlo, dhi - dlo);
  out.edge_attr = edge_attr.narrow(0, elo, ehi - elo);
  if (cond) {
    out.cond =
        PairTensor{cond->first.index_select(0, used.kept), cond->second.narrow(0, dlo, dhi - dlo)};
  }
  return out;
}

EdgeTensors ensure_edges_are_dst_sorted(const at::Tensor& edge_attr, const at::Tensor& edge_index,
                                        int64_t num_dst, bool edges_are_sharded,
                                        const CommPtr& group, bool edges_are_dst_sorted) {
  constexpr const char* fn = "ensure_edges_are_dst_sorted";
  const int rank = detail::rank_of(group);
  check_edge_index(fn, edge_index, rank);
  check_count(fn, "num_dst", num_dst, rank);
  check_rows(fn, "edge_attr", edge_attr, edge_index.size(1), rank);
  if (edges_are_dst_sorted) {
    if (debug_checks()) {
      detail::check_sorted(fn, edge_index, rank);
      detail::check_dst_ends(fn, edge_index, 0, num_dst, rank);
    }
    return {edge_attr, edge_index};
  }
  if (edges_are_sharded && model_is_distributed(group)) {
    fail(fn, "edges_are_sharded",
         "replicated edges when edges_are_dst_sorted is false (sorting a distributed edge shard "
         "would need a gather of every rank's edges; sort the full graph before sharding it)",
         "sharded, unsorted edges in a group of " + std::to_string(group->size()) + " ranks", rank);
  }
  const SortedEdgeIndex sorted = detail::sort_by_dst_impl(fn, edge_index, num_dst, rank);
  return {edge_attr.index_select(0, sorted.perm), sorted.edge_index};
}

EdgeChunks sort_edges_1hop_chunks(int64_t num_nodes, const at::Tensor& edge_attr,
                                  const at::Tensor& edge_index, int64_t num_chunks,
                                  bool edges_are_dst_sorted) {
  return sort_edges_1hop_chunks(std::make_pair(num_nodes, num_nodes), edge_attr, edge_index,
                                num_chunks, edges_are_dst_sorted);
}

EdgeChunks sort_edges_1hop_chunks(std::pair<int64_t, int64_t> num_nodes,
                                  const at::Tensor& edge_attr, const at::Tensor& edge_index,
                                  int64_t num_chunks, bool edges_are_dst_sorted) {
  constexpr const char* fn = "sort_edges_1hop_chunks";
  const int rank = 0;
  check_edge_index(fn, edge_index, rank);
  check_count(fn, "num_nodes.first (n_src)", num_nodes.first, rank);
  check_count(fn, "num_nodes.second (n_dst)", num_nodes.second, rank);
  check(num_chunks >= 1, fn, "num_chunks", "num_chunks >= 1", num_chunks, rank);
  check_rows(fn, "edge_attr", edge_attr, edge_index.size(1), rank);
  detail::check_ids(fn, edge_index, num_nodes.first, num_nodes.second, rank);
  EdgeChunks out;
  if (edges_are_dst_sorted) {
    if (debug_checks()) detail::check_sorted(fn, edge_index, rank);
    const auto splits =
        detail::sorted_edge_splits(edge_index, balanced_sizes(num_nodes.second, num_chunks));
    int64_t start = 0;
    for (int64_t s : splits) {
      out.edge_attr.push_back(edge_attr.narrow(0, start, s));
      out.edge_index.push_back(edge_index.narrow(1, start, s));
      start += s;
    }
    return out;
  }
  std::vector<int64_t> counts;
  const at::Tensor perm =
      detail::stable_sort_perm(edge_index.select(0, 1), num_nodes.second, num_chunks, &counts);
  int64_t start = 0;
  for (int64_t s : counts) {
    const at::Tensor idx = perm.narrow(0, start, s);
    out.edge_attr.push_back(edge_attr.index_select(0, idx));
    out.edge_index.push_back(edge_index.index_select(1, idx));
    start += s;
  }
  return out;
}

ConnectedSources drop_unconnected_src_nodes(const at::Tensor& x_src, const at::Tensor& edge_index,
                                            std::pair<int64_t, int64_t> num_nodes) {
  constexpr const char* fn = "drop_unconnected_src_nodes";
  const int rank = 0;
  check_edge_index(fn, edge_index, rank);
  check_count(fn, "num_nodes.first (n_src)", num_nodes.first, rank);
  check_count(fn, "num_nodes.second (n_dst)", num_nodes.second, rank);
  check_rows(fn, "x_src", x_src, num_nodes.first, rank);
  detail::check_ids(fn, edge_index, num_nodes.first, num_nodes.second, rank);
  const detail::LocalEdges used =
      detail::local_edge_index(fn, edge_index, num_nodes.first, 0, rank);
  ConnectedSources out;
  out.kept_ids = used.kept;
  out.edge_index = used.edge_index;
  out.x_src = x_src.index_select(0, used.kept);
  return out;
}

}  // namespace graphshard
