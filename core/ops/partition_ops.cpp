// partition_graph (graphshard/partitioners.h) as a PyTorch operator. A set-up step: eager,
// CompositeImplicitAutograd (its outputs are ids, nothing to differentiate), the renumbering
// returned as tensors and the partition as its fields (a schema has no structs).
#include <torch/library.h>

#include <ATen/ATen.h>

#include "graphshard/partitioners.h"

namespace graphshard::ops {
namespace {

using Renumbered = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                              at::Tensor, std::vector<int64_t>, std::vector<int64_t>,
                              std::vector<int64_t>>;

Renumbered partition(const at::Tensor& edge_index, at::IntArrayRef num_nodes, int64_t num_parts,
                     c10::string_view scheme, bool plain, const std::optional<at::Tensor>& coords,
                     int64_t seed) {
  TORCH_CHECK_VALUE(num_nodes.size() == 2,
                    "graphshard::partition_graph: num_nodes: expected (n_src, n_dst), got ",
                    num_nodes.size(), " entries (rank 0)");
  TORCH_CHECK_VALUE(seed >= 0, "graphshard::partition_graph: seed: expected a seed >= 0, got ",
                    seed, " (rank 0)");
  PartitionOptions o;
  o.scheme = partition_scheme_from_string(std::string(scheme));
  o.plain = plain;
  if (coords) o.dst_coords = *coords;
  o.seed = static_cast<uint64_t>(seed);
  const RenumberedGraph g = partition_graph(edge_index, {num_nodes[0], num_nodes[1]}, num_parts, o);
  return {g.edge_index,  g.src_perm,  g.dst_perm, g.src_inverse, g.dst_inverse,
          g.edge_perm,   g.partition.dst_splits,  g.partition.edge_splits, g.src_splits};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(graphshard, m) {
  m.def(
      "partition_graph(Tensor edge_index, int[] num_nodes, int num_parts, "
      "str scheme=\"contiguous\", bool plain=False, Tensor? dst_coords=None, int seed=0) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int[], int[], int[])");
}

TORCH_LIBRARY_IMPL(graphshard, CompositeImplicitAutograd, m) {
  m.impl("partition_graph", partition);
}

}  // namespace graphshard::ops
