// Single-process oracle of the graph functions (SPEC §3): LibTorch only, deliberately naive
// (std::stable_sort, std::set / std::map, loops over the edges). Whole-world inputs; "rank r's
// result" is computed from the full graph, never by communicating.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include <ATen/ATen.h>

namespace graphshard::reference {

using RefPair = std::pair<at::Tensor, at::Tensor>;

// balanced(n, parts): parts sizes differing by at most one, larger first.
std::vector<int64_t> graph_balanced(int64_t n, int64_t parts);

struct RefSorted {
  at::Tensor edge_index, perm;  // perm int64
};
RefSorted sort_edge_index_by_dst(const at::Tensor& edge_index);
bool is_edge_index_dst_sorted(const at::Tensor& edge_index);

struct RefPartition {
  int64_t n_src = 0, n_dst = 0, num_edges = 0, num_parts = 1;
  std::vector<int64_t> dst_splits, edge_splits;
};
// Counts, for every edge, the part its destination lies in (works on unsorted edges too).
RefPartition build_graph_partition(const at::Tensor& edge_index, int64_t num_parts, int64_t n_src,
                                   int64_t n_dst);

struct RefSubgraph {
  at::Tensor x_src, x_dst, edge_attr, edge_index, src_ids;
  std::optional<RefPair> cond;
};
// The edges whose destination lies in [dst_lo, dst_hi), in input order; their sources (a
// std::set) relabelled by a std::map; destinations minus dst_lo.
RefSubgraph subgraph(const at::Tensor& x_src, const at::Tensor& x_dst, const at::Tensor& edge_attr,
                     const at::Tensor& edge_index, int64_t dst_lo, int64_t dst_hi,
                     const std::optional<RefPair>& cond = std::nullopt);
// Part i of a partition: subgraph over part i's destination range.
RefSubgraph materialise(const RefPartition& p, int64_t i, const at::Tensor& x_src,
                        const at::Tensor& x_dst, const at::Tensor& edge_attr,
                        const at::Tensor& edge_index,
                        const std::optional<RefPair>& cond = std::nullopt);

struct RefEdges {
  at::Tensor edge_attr, edge_index;
  std::vector<int64_t> sizes;  // block lengths (regroup only)
};
// Stable sort by destination, attributes permuted alike.
RefEdges sort_edges(const at::Tensor& edge_attr, const at::Tensor& edge_index);
// Blocks q = 0..parts-1 of the edges whose destination lies in range(balanced(n_dst, parts), q),
// each in input order (what shard_edges_1hop distributes; rank r keeps block r).
RefEdges regroup_by_dst_block(const at::Tensor& edge_attr, const at::Tensor& edge_index,
                              int64_t n_dst, int64_t parts);

struct RefChunks {
  std::vector<at::Tensor> edge_attr, edge_index;
};
RefChunks sort_edges_1hop_chunks(int64_t n_dst, const at::Tensor& edge_attr,
                                 const at::Tensor& edge_index, int64_t num_chunks);

struct RefConnected {
  at::Tensor x_src, edge_index, kept_ids;
};
RefConnected drop_unconnected_src_nodes(const at::Tensor& x_src, const at::Tensor& edge_index);

}  // namespace graphshard::reference
