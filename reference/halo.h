// Single-process oracle of the halo exchange (SPEC §3b): std::set / std::map and loops over the
// whole graph, never the production code's path. "Rank r's" results are computed from the
// whole-world view.
#pragma once

#include <cstdint>
#include <vector>

#include <ATen/ATen.h>

namespace graphshard::reference {

struct RefHalo {
  int64_t num_local = 0;
  std::vector<int64_t> halo_global;               // ascending: the halo's local order
  std::vector<int64_t> recv_counts;               // per owner
  std::vector<std::vector<int64_t>> send_local;   // [q]: ascending local ids rank q needs
  at::Tensor edge_index_local;                    // int64 [2, E_r], rank r's edges in input order
};

// Rank r's halo of the plain graph `edge_index` (any order; whole graph) cut into the node
// ranges of dst_splits.
RefHalo halo_info(const at::Tensor& edge_index, const std::vector<int64_t>& dst_splits, int r);

// Rank r's halo_exchange output from the whole-world features x_full [n, ...].
at::Tensor halo_forward(const at::Tensor& x_full, const std::vector<int64_t>& dst_splits,
                        const RefHalo& h, int r);

// Rank r's input gradient from every rank's upstream gradient ys[q] ([total_q, ...]): for each
// of its nodes, the sum in rank order of the gradients of the ranks that hold it (its own rows
// at rank r's place, the others' halo rows), from zero; in float32 for 16-bit floats, rounded
// once.
at::Tensor halo_backward(const std::vector<at::Tensor>& ys, const std::vector<RefHalo>& halos,
                         const std::vector<int64_t>& dst_splits, int r);

}  // namespace graphshard::reference
