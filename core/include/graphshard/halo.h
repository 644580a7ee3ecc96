// Halo exchange on a partitioned plain graph (anemoi.models.distributed.halo, anemoi-models
// 0.17+; SPEC §3b).
//
// A plain graph (n_src == n_dst == n) is cut by a GraphPartition into W contiguous node ranges:
// rank r owns nodes range(dst_splits, r) and the edges whose destination it owns. A halo node of
// rank r is a source of one of its edges that rank r does not own. Instead of gathering every
// node on every rank, halo_exchange moves to each rank exactly the rows of its halo nodes, in one
// all-to-all-v.
//
// Local numbering on rank r: owned nodes [0, num_local_nodes) (global id minus the range start),
// then the halo nodes ordered by owning rank, then by global id (so, since owners hold ascending
// ranges, by global id).
//
// Common contract (as graph.h): inputs are never modified; every argument is checked before any
// communication, errors are c10::ValueError "graphshard::<fn>: <arg>: expected ..., got ...
// (rank r)"; a failed peer is a CommError (comm.h); results are bitwise the same on every run.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "graphshard/comm.h"
#include "graphshard/graph.h"
#include "graphshard/shapes.h"

namespace graphshard {

// Per-rank halo exchange metadata, computed once from the graph and reused across layers.
struct HaloInfo {
  int64_t num_local_nodes = 0;
  int64_t num_halo_nodes = 0;
  // W entries: send_indices[q] = local ids (int64, ascending) of the owned nodes rank q needs.
  std::vector<at::Tensor> send_indices;
  // W entries: recv_counts[q] = number of halo nodes received from rank q (0 for q = r).
  std::vector<int64_t> recv_counts;
  // W entries, only when built with debug: the global ids (int64, ascending) of the halo nodes
  // received from each rank (what verify_halo_info checks against the senders).
  std::optional<std::vector<at::Tensor>> recv_global_ids;
  // [2, E_r], the edge index's dtype: rank r's edges, sources in the local numbering
  // ([0, total_nodes())), destinations in [0, num_local_nodes).
  at::Tensor edge_index_local;

  int64_t total_nodes() const { return num_local_nodes + num_halo_nodes; }
  std::vector<int64_t> send_counts() const;
};

// Collective. partition: of the plain graph (num_nodes.first == num_nodes.second), num_parts ==
// W. edge_index: dst-sorted, global ids; the whole graph (rank r uses its edge range
// range(edge_splits, r)) or, with edge_shard_sizes set (equal to partition.edge_splits), this
// rank's edges only. What rank q must send to rank r is what rank r's edges need from q, learnt
// by exchanging the requests (one all-to-all-v of counts, one of ids), so the send lists are
// right for directed graphs too [SPEC differs from anemoi, which assumes a symmetric graph].
// debug: keep recv_global_ids (for verify_halo_info). Null group or W == 1: no halo nodes,
// send_indices and recv_counts of one (empty) entry.
HaloInfo build_halo_info(const GraphPartition& partition, const at::Tensor& edge_index,
                         const CommPtr& group, const ShardSizes& edge_shard_sizes = std::nullopt,
                         bool debug = false);

// x: [num_local_nodes, ...] this rank's owned rows (any dtype; strided accepted). Returns a new
// contiguous [total_nodes(), ...] tensor: the owned rows, then the halo rows received, in the
// local numbering. Autograd: differentiable in x; the backward sends each halo row's gradient
// back to its owner, which adds it at the sent position (in rank order, then position order, so
// the bits are fixed), the owned rows' gradient passing through; it is the adjoint of the
// forward. One all-to-all-v of exactly the needed rows each way, packed once (an index_select)
// and received in place. Null group or W == 1: x itself.
at::Tensor halo_exchange(const at::Tensor& x, const HaloInfo& halo_info, const CommPtr& group);

// Collective check (for debugging): what each rank q sends to rank r equals what rank r expects
// from q (halo_info built with debug = true). Raises c10::ValueError on EVERY rank when any pair
// disagrees, naming the first such pair of ranks and their counts.
void verify_halo_info(const HaloInfo& halo_info, const GraphPartition& partition,
                      const CommPtr& group);

namespace detail {
// The movements behind halo_exchange, without autograd (forward and backward); arguments
// already checked. Internal.
at::Tensor halo_forward(const at::Tensor& x, const std::vector<at::Tensor>& send_indices,
                        const std::vector<int64_t>& recv_counts, Communicator& comm);
at::Tensor halo_backward(const at::Tensor& grad, int64_t num_local_nodes,
                         const std::vector<at::Tensor>& send_indices,
                         const std::vector<int64_t>& recv_counts, Communicator& comm);
// Where each of the ascending global ids `needed` comes from, when rank q owns the ids
// range(splits, q): `info` describes an exchange (halo_exchange) that appends to this rank's own
// rows the rows of the needed ids other ranks own, learnt by exchanging requests (collective);
// order[i] is the row of needed[i] in that exchange's output. Used by build_halo_info (the
// sources of a plain graph's local edges) and by shard_graph_to_local with SrcExchange::kHalo
// (the sources of a mapper's local edges, owners from the source shard sizes).
struct OwnerRows {
  HaloInfo info;     // edge_index_local undefined
  at::Tensor order;  // int64 [len(needed)]
};
OwnerRows rows_from_owners(const char* fn, const at::Tensor& needed,
                           const std::vector<int64_t>& splits, const CommPtr& group, bool debug);
// ids is a defined 1-D int64 tensor (an entry of HaloInfo's lists), else a ValueError on arg.
void check_id_list(const char* fn, const std::string& arg, const at::Tensor& ids, int rank);
// The checks of halo_exchange's arguments (shared with the operator library).
void check_halo_arguments(const char* fn, const at::Tensor& x, const HaloInfo& info, int world,
                          int rank);
}  // namespace detail

}  // namespace graphshard
