// Partitioning of dst-sorted graphs (anemoi.models.distributed.khop_edges; SPEC §3, §5).
//
// An edge index is an int64 or int32 tensor of shape [2, E]: row 0 source ids in [0, n_src),
// row 1 destination ids in [0, n_dst). Edge attributes are [E, ...] of any floating dtype and
// trailing shape. "dst-sorted" means row 1 is non-decreasing; dst-sorted edges are CSR in
// disguise, so partition boundaries come from binary search, sorting is a stable counting sort
// and "used sources" is a mark-and-scan: every function is O(E + N).
//
// Common contract:
//  - inputs are never modified in place; relabelled edge indices are new tensors of the input's
//    index dtype; feature and attribute outputs are slices (views) or index_select copies of
//    the inputs, so autograd flows through them to the inputs;
//  - results are bitwise identical on every run and for every intra-op thread count;
//  - `group` null (or of size 1) means "not distributed";
//  - every argument is validated before any communication; errors are c10::ValueError with the
//    message `graphshard::<function>: <argument>: expected ..., got ... (rank r)`, raised on
//    every rank alike when the offending data are the same on every rank (replicated inputs);
//  - sortedness is assumed where sorted edges are required and verified only when debug checks
//    are on (set_debug_checks or the environment variable GRAPHSHARD_DEBUG_CHECKS=1), because
//    a full check is a pass over all edges.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "graphshard/comm.h"
#include "graphshard/shapes.h"

namespace graphshard {

using PairTensor = std::pair<at::Tensor, at::Tensor>;

// Runtime switch for the O(E) sortedness (and full id range) checks of functions that assume
// dst-sorted edges. Default: the environment variable GRAPHSHARD_DEBUG_CHECKS ("1", "true",
// "on" enable it) read at the first call; set_debug_checks overrides it process-wide.
void set_debug_checks(bool on);
bool debug_checks();

struct SortedEdgeIndex {
  at::Tensor edge_index;  // [2, E], input dtype, row 1 non-decreasing
  at::Tensor perm;        // [E] int64: sorted = input[:, perm]
};

// STABLE sort of the edges by destination (counting sort, parallel over CPU threads).
// max_value: optional exclusive upper bound on destination ids; ids at or above it are an error
// (also negative ids). Without it the bound is max(row 1) + 1.
SortedEdgeIndex sort_edge_index_by_dst(const at::Tensor& edge_index,
                                       std::optional<int64_t> max_value = std::nullopt);

// Row 1 non-decreasing; true for E <= 1. Checks the shape and dtype of the edge index.
bool is_edge_index_dst_sorted(const at::Tensor& edge_index);

// Named result of GraphPartition::materialise [SPEC differs from anemoi: named fields].
struct MaterialisedPartition {
  at::Tensor x_src;       // x_src[src_ids]
  at::Tensor x_dst;       // part i's destination rows (a slice)
  at::Tensor edge_attr;   // part i's edge rows (a slice)
  at::Tensor edge_index;  // [2, E_i], sources relabelled to positions in src_ids, destinations
                          // to part-local ids; a new tensor
  at::Tensor src_ids;     // ascending global ids of the sources part i's edges use (index dtype)
  std::optional<PairTensor> cond;  // (cond_src[src_ids], cond_dst[part i's destination range])
};

// Metadata of a dst-sorted graph cut into num_parts contiguous destination ranges: part i has
// dst_splits[i] destinations and edge_splits[i] edges, the contiguous edge range
// partition_range(edge_splits, i).
struct GraphPartition {
  std::pair<int64_t, int64_t> num_nodes{0, 0};  // (n_src, n_dst)
  int64_t num_edges = 0;
  int64_t num_parts = 1;
  std::vector<int64_t> dst_splits;
  std::vector<int64_t> edge_splits;

  // Pure local (no communication). x = (x_src [n_src, ...], x_dst [n_dst, ...]); edge_attr
  // [num_edges, ...]; edge_index [2, num_edges] dst-sorted; cond = (cond_src [n_src, ...],
  // cond_dst [n_dst, ...]). Errors: partition_id outside [0, num_parts), sizes that disagree
  // with the partition, ids out of range.
  MaterialisedPartition materialise(int64_t partition_id, const PairTensor& x,
                                    const at::Tensor& edge_attr, const at::Tensor& edge_index,
                                    const std::optional<PairTensor>& cond = std::nullopt) const;

  bool operator==(const GraphPartition& o) const {
    return num_nodes == o.num_nodes && num_edges == o.num_edges && num_parts == o.num_parts &&
           dst_splits == o.dst_splits && edge_splits == o.edge_splits;
  }
  bool operator!=(const GraphPartition& o) const { return !(*this == o); }
  std::string to_string() const;
};
std::ostream& operator<<(std::ostream& os, const GraphPartition& p);

// dst_splits = balanced_sizes(n_dst, num_parts); edge_splits[i] = edges whose destination lies in
// part i's range, found by one binary search per boundary on the dst-sorted row 1 (no pass over
// the edges; debug checks add the full sortedness and id range check). Errors: num_parts < 1,
// negative node counts, destination ids at the ends of row 1 out of [0, n_dst).
GraphPartition build_graph_partition(const at::Tensor& edge_index, int64_t num_parts,
                                     std::pair<int64_t, int64_t> num_nodes);

// Partition for distributed sharding from the current shard metadata: n_src = sum(src_nodes) if
// src is sharded else x_src.size(0), n_dst likewise, num_parts = W (1 for a null group). Edges
// sharded: edge_splits = shard_info.edges (the local edge_index must have edges[r] columns),
// dst_splits = shard_info.dst_nodes if dst is sharded else balanced(n_dst, W); no pass over the
// edges. Otherwise build_graph_partition(edge_index, W, (n_src, n_dst)). Local, no
// communication.
GraphPartition build_graph_partition_from_shard_info(const at::Tensor& edge_index,
                                                     const PairTensor& x,
                                                     const BipartiteGraphShardInfo& shard_info,
                                                     const CommPtr& group);

struct EdgeTensors {
  at::Tensor edge_attr;
  at::Tensor edge_index;
};

// edges_are_dst_sorted: both returned unchanged (checked only under debug checks). Otherwise:
// sharded edges in a distributed group are an error (sorting a shard would need a gather);
// else a stable sort by destination (max_value = num_dst) with edge_attr permuted alike.
EdgeTensors ensure_edges_are_dst_sorted(const at::Tensor& edge_attr, const at::Tensor& edge_index,
                                        int64_t num_dst, bool edges_are_sharded,
                                        const CommPtr& group, bool edges_are_dst_sorted = true);

struct ShardedEdges {
  at::Tensor edge_attr;         // this rank's edge rows
  at::Tensor edge_index;        // this rank's edge columns, global ids (NOT relabelled)
  ShardSizes edge_shard_sizes;  // per-rank edge counts; nullopt when not distributed
};

// Not distributed: tensors unchanged, sizes nullopt. Distributed: rank q's block holds the edges
// whose destination lies in range(balanced(dst_size, W), q), in input order (sorted input: the
// sizes come from build_graph_partition, no regrouping; unsorted: a stable regroup, the
// attributes permuted alike); then edge_index = shard_tensor(., 1, sizes), edge_attr =
// shard_tensor(., 0, sizes). Inputs are replicated. Differentiable in edge_attr.
ShardedEdges shard_edges_1hop(const at::Tensor& edge_attr, const at::Tensor& edge_index,
                              int64_t src_size, int64_t dst_size, const CommPtr& group,
                              bool edges_are_dst_sorted = true);

struct LocalGraph {
  at::Tensor x_src;                    // the sources the local edges use (ascending global id)
  at::Tensor x_dst;                    // this rank's destinations
  at::Tensor edge_attr;                // this rank's edges
  at::Tensor edge_index;               // local ids: sources into x_src, destinations into x_dst
  BipartiteGraphShardInfo shard_info;  // (input src_nodes, dst_splits, edge_splits)
  std::optional<PairTensor> cond;      // (cond_src selected like x_src, cond_dst as given)
};

// How shard_graph_to_local brings each rank the rows of the sources its edges use when the
// sources are sharded. kAllGather: sync_tensor gathers every source on every rank (what anemoi
// does; its backward reduce-scatters the whole gradient). kHalo: each rank asks the owners for
// the rows it uses and receives exactly those, in one all-to-all-v (after two small ones that
// exchange the requests: graphshard/halo.h); the backward sends each row's gradient back to its
// owner, which adds them in rank order. Both give the same output and the same gradients, bit
// for bit on engines that sum in rank order (sim, Gloo's direct path): either way a source row's
// gradient is the sum, in rank order, of the gradients of the ranks that use it (the
// reduce-scatter adds zeros for the others). Replicated sources need no exchange either way (the
// gradient is all-reduced as before).
enum class SrcExchange { kAllGather, kHalo };

// Not distributed: everything returned unchanged. Otherwise W == partition.num_parts;
// destinations: already sharded (sizes must equal dst_splits) or shard_tensor(x_dst, 0,
// dst_splits); edges: already sharded (sizes must equal edge_splits) or shard_tensor with
// edge_splits; destinations relabelled to local ids; x_src_full = sync_tensor(x_src, 0,
// src_nodes, group, gather_in_fwd = src is sharded), then the used sources are kept (ascending)
// and relabelled. The gradient of x_src is complete on every rank (sync reduces it).
LocalGraph shard_graph_to_local(const GraphPartition& partition, const PairTensor& x,
                                const at::Tensor& edge_attr, const at::Tensor& edge_index,
                                const BipartiteGraphShardInfo& shard_info, const CommPtr& group,
                                const std::optional<PairTensor>& cond = std::nullopt,
                                SrcExchange src_exchange = SrcExchange::kAllGather);

struct EdgeChunks {
  std::vector<at::Tensor> edge_attr;
  std::vector<at::Tensor> edge_index;
};

// Chunk i holds the edges whose destination lies in range(balanced(n_dst, num_chunks), i), in
// input order, ids not relabelled. Sorted path: slices (views); unsorted path: selections.
// num_nodes: one count (plain graph) or (n_src, n_dst).
EdgeChunks sort_edges_1hop_chunks(int64_t num_nodes, const at::Tensor& edge_attr,
                                  const at::Tensor& edge_index, int64_t num_chunks,
                                  bool edges_are_dst_sorted = true);
EdgeChunks sort_edges_1hop_chunks(std::pair<int64_t, int64_t> num_nodes,
                                  const at::Tensor& edge_attr, const at::Tensor& edge_index,
                                  int64_t num_chunks, bool edges_are_dst_sorted = true);

struct ConnectedSources {
  at::Tensor x_src;       // x_src[kept_ids]
  at::Tensor edge_index;  // sources relabelled to positions in kept_ids; destinations unchanged
  at::Tensor kept_ids;    // distinct sources of the edges, ascending (index dtype)
};

// Keeps the sources some edge uses. x_src has n_src rows; ids checked against num_nodes.
ConnectedSources drop_unconnected_src_nodes(const at::Tensor& x_src, const at::Tensor& edge_index,
                                            std::pair<int64_t, int64_t> num_nodes);

}  // namespace graphshard
