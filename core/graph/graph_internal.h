// Shared validation and device dispatch of the graph functions. Internal to core/graph.
//
// Checks raise c10::ValueError through detail::fail (check.h), naming the public function.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "../check.h"
#include "../cpu/graph_kernels.h"
#include "graphshard/graph.h"

namespace graphshard::detail {

inline int rank_of(const CommPtr& g) {
  return g ? g->rank() : 0;
}
inline int world_of(const CommPtr& g) {
  return g ? g->size() : 1;
}

// [2, E] with an int32/int64 dtype.
void check_edge_index(const char* fn, const at::Tensor& edge_index, int rank);
// n >= 0.
void check_count(const char* fn, const char* arg, int64_t n, int rank);
// t has at least one dim and t.size(0) == rows.
void check_rows(const char* fn, const char* arg, const at::Tensor& t, int64_t rows, int rank);
// Every source id in [0, n_src) and destination id in [0, n_dst) (one min/max reduction each).
void check_ids(const char* fn, const at::Tensor& edge_index, int64_t n_src, int64_t n_dst,
               int rank);
// Every destination id in [lo, hi) (a min/max reduction).
void check_dst_range(const char* fn, const at::Tensor& edge_index, int64_t lo, int64_t hi,
                     int rank);
// Destination ids of a dst-sorted slice in [lo, hi): checks the two ends only.
void check_dst_ends(const char* fn, const at::Tensor& edge_index, int64_t lo, int64_t hi, int rank);
// Row 1 non-decreasing (a full pass).
void check_sorted(const char* fn, const at::Tensor& edge_index, int rank);

// Index of the first decrease in a 1-D row, -1 when non-decreasing (any device).
int64_t first_unsorted(const at::Tensor& row);

// The smallest and largest id of a non-empty row: one host synchronisation for a device row.
std::pair<int64_t, int64_t> id_range(const at::Tensor& row);
// Stable sort permutation by value (blocks == 0, values in [0, num_keys)) or by the part of
// balanced(num_keys, blocks) each value lies in; key_counts only with blocks > 0.
at::Tensor stable_sort_perm(const at::Tensor& row, int64_t num_keys, int64_t blocks,
                            std::vector<int64_t>* key_counts = nullptr);
// Edge counts per part of dst_splits on a dst-sorted edge index (binary search per boundary).
std::vector<int64_t> sorted_edge_splits(const at::Tensor& edge_index,
                                        const std::vector<int64_t>& dst_splits);
// Used sources of `src_row` (ascending) and the row relabelled to positions in that list;
// an id outside [0, n) raises for `fn`.
// `relabelled_into` as in cpu::used_ids.
cpu::UsedIds used_sources(const char* fn, const at::Tensor& src_row, int64_t n, int rank,
                          const at::Tensor& relabelled_into = {});
// A part's local edge index in one [2, E] result written row by row (no stack): sources
// relabelled to their position in `kept` (the used sources of [0, n_src), ascending),
// destinations shifted down by dst_lo. An id outside [0, n_src) raises for `fn`.
struct LocalEdges {
  at::Tensor kept;
  at::Tensor edge_index;
};
LocalEdges local_edge_index(const char* fn, const at::Tensor& edges, int64_t n_src, int64_t dst_lo,
                            int rank);

// The implementations behind the public functions, with the caller's name for messages.
GraphPartition build_graph_partition_impl(const char* fn, const at::Tensor& edge_index,
                                          int64_t num_parts, std::pair<int64_t, int64_t> nodes,
                                          int rank);
SortedEdgeIndex sort_by_dst_impl(const char* fn, const at::Tensor& edge_index,
                                 std::optional<int64_t> max_value, int rank);

}  // namespace graphshard::detail
