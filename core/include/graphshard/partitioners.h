// Locality-aware partitioning of a graph's nodes over ranks (issue 17).
//
// A partition is a node -> part map plus the renumbering that makes every part a contiguous id
// range, so that everything built on contiguous ranges (GraphPartition, shard_graph_to_local,
// build_halo_info) applies unchanged to the renumbered graph. The renumbering is returned as
// permutations: callers permute features once, run on the renumbered graph, and un-permute the
// results:
//
//   const RenumberedGraph g = partition_graph(edge_index, {n_src, n_dst}, W, options);
//   x_src_new = x_src.index_select(0, g.src_perm);   x_dst_new = x_dst.index_select(0, g.dst_perm);
//   edge_attr_new = edge_attr.index_select(0, g.edge_perm);
//   ... layer on (g.edge_index, g.partition, sizes g.src_splits / g.partition.dst_splits) ...
//   out = out_new.index_select(0, g.dst_inverse);     // back in the caller's numbering
//
// Schemes (the destination parts; ties and orders are by node id, so every result is
// deterministic and independent of the thread count):
//   contiguous     today's balanced ranges: part i = range(balanced(n_dst, W), i); ids unchanged
//                  (sources too: balanced ranges of the source ids).
//   edge_balanced  contiguous ranges of destination ids whose edge counts are as equal as
//                  possible, then whose node counts are (nodes without edges go where the node
//                  counts balance best).
//   hilbert        destinations ordered along a 3-D Hilbert curve through their coordinates on
//                  the sphere, that order cut as edge_balanced cuts the id order.
//   latlon_boxes   a grid of latitude bands x longitude boxes (as PhysicsNeMo partitions
//                  GraphCast): points cut into bands by latitude and each band into boxes by
//                  longitude, both cuts balancing edges then nodes; boxes closest to square.
//   metis          METIS k-way (libmetis) on the destinations' adjacency (plain graph: its edges,
//                  either direction; bipartite: two destinations are adjacent when they share a
//                  source), balancing edges and nodes (METIS's default tolerance, 3 %), fixed seed.
// Sources of a bipartite graph (every scheme but contiguous) follow their destinations: a source
// goes to the part holding most of the destinations of its edges (ties: the lower part), so most
// edges find their source on their own rank; a source no edge uses goes to part
// floor(id * W / n_src). A plain graph (options.plain) renumbers its sources as its destinations.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "graphshard/graph.h"
#include "graphshard/partition_scheme.h"

namespace graphshard {

struct PartitionOptions {
  PartitionScheme scheme = PartitionScheme::kContiguous;
  // Sources and destinations are one node set (n_src == n_dst), renumbered alike: a processor's
  // graph, halo exchange.
  bool plain = false;
  // Destination coordinates, [n_dst, 3] of a floating dtype (points on or near the unit sphere;
  // only their direction matters): required by hilbert and latlon_boxes, ignored otherwise.
  at::Tensor dst_coords;
  uint64_t seed = 0;  // METIS's random seed
};

struct RenumberedGraph {
  PartitionScheme scheme = PartitionScheme::kContiguous;
  // Of the renumbered graph: part i holds destinations range(dst_splits, i) and the contiguous
  // edge range range(edge_splits, i).
  GraphPartition partition;
  std::vector<int64_t> src_splits;  // sources per part (part i: range(src_splits, i))
  at::Tensor edge_index;            // [2, E] renumbered, dst-sorted; input dtype and device
  // int64 [n]: renumbered node i is input node perm[i] (x_new = x.index_select(0, perm)).
  at::Tensor src_perm, dst_perm;
  // int64 [n]: input node j is renumbered node inverse[j] (y = y_new.index_select(0, inverse)).
  at::Tensor src_inverse, dst_inverse;
  // int64 [E]: renumbered edge j is input edge edge_perm[j]; edges of one destination keep
  // their input order.
  at::Tensor edge_perm;
};

// Partitions a graph (edge_index [2, E] int32/int64, any order, ids within num_nodes = (n_src,
// n_dst)) into num_parts parts by options.scheme and renumbers it. The work is on the CPU (a
// set-up step); results are on edge_index's device. Errors (c10::ValueError, naming
// partition_graph and the argument): num_parts < 1, negative node counts, ids out of range,
// options.plain with n_src != n_dst, missing or malformed coordinates for hilbert/latlon_boxes,
// a graph METIS cannot take (more than 2^31 - 1 nodes or adjacency entries).
RenumberedGraph partition_graph(const at::Tensor& edge_index, std::pair<int64_t, int64_t> num_nodes,
                                int64_t num_parts, const PartitionOptions& options = {});

}  // namespace graphshard
