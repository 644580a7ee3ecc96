// The graph functions (khop_edges) and the shape utilities as PyTorch operators. They are local
// or call the primitives themselves, so each is one CompositeImplicitAutograd kernel: it runs
// graphshard's C++ function above autograd, and the ATen operations and primitives inside it
// record the graph as they do in C++. Partitions and shard infos travel as their fields (a
// schema has no structs); a list-valued result that the C++ function leaves unset is None.
// Eager only: their output sizes depend on the data (how many sources a part uses), so
// torch.compile runs them outside a graph (compute partitions before the compiled region).
#include <torch/library.h>

#include <ATen/ATen.h>

#include "graphshard/graph.h"
#include "graphshard/primitives.h"
#include "graphshard/shapes.h"
#include "group.h"
#include "primitive_ops.h"

namespace graphshard::ops {
namespace {

using Sizes = at::OptionalIntArrayRef;
using Name = std::optional<c10::string_view>;

// A null group (Python's None) is graphshard's null communicator.
CommPtr comm_of(const Name& group, const at::Tensor& like) {
  if (!group) return nullptr;
  return communicator_for(std::string(*group), like.defined() ? like.device().type() : at::kCPU);
}

std::pair<int64_t, int64_t> pair_of(at::IntArrayRef v, const char* fn) {
  TORCH_CHECK_VALUE(v.size() == 2, "graphshard::", fn, ": num_nodes: expected (n_src, n_dst), got ",
                    v.size(), " entries");
  return {v[0], v[1]};
}

GraphPartition partition_of(at::IntArrayRef num_nodes, int64_t num_edges, int64_t num_parts,
                            at::IntArrayRef dst_splits, at::IntArrayRef edge_splits) {
  GraphPartition p;
  p.num_nodes = pair_of(num_nodes, "GraphPartition");
  p.num_edges = num_edges;
  p.num_parts = num_parts;
  p.dst_splits = dst_splits.vec();
  p.edge_splits = edge_splits.vec();
  return p;
}

using PartitionFields =
    std::tuple<std::vector<int64_t>, int64_t, int64_t, std::vector<int64_t>, std::vector<int64_t>>;
PartitionFields fields_of(const GraphPartition& p) {
  return {std::vector<int64_t>{p.num_nodes.first, p.num_nodes.second}, p.num_edges, p.num_parts,
          p.dst_splits, p.edge_splits};
}

std::optional<PairTensor> pair_or_none(const std::optional<at::Tensor>& a,
                                       const std::optional<at::Tensor>& b) {
  if (!a && !b) return std::nullopt;
  return PairTensor{a.value_or(at::Tensor()), b.value_or(at::Tensor())};
}

at::Tensor value_or_undefined(const std::optional<at::Tensor>& t) {
  return t.value_or(at::Tensor());
}

template <typename F>
auto translated(F&& f) -> decltype(f()) {
  std::optional<decltype(f())> out;
  translate_comm_errors([&] { out.emplace(f()); });
  return std::move(*out);
}

std::tuple<at::Tensor, at::Tensor> sort_by_dst(const at::Tensor& edge_index,
                                               std::optional<int64_t> max_value) {
  auto s = sort_edge_index_by_dst(edge_index, max_value);
  return {s.edge_index, s.perm};
}

PartitionFields build_partition(const at::Tensor& edge_index, int64_t num_parts,
                                at::IntArrayRef num_nodes) {
  return fields_of(
      build_graph_partition(edge_index, num_parts, pair_of(num_nodes, "build_graph_partition")));
}

PartitionFields build_partition_from_shard_info(const at::Tensor& edge_index,
                                                const at::Tensor& x_src, const at::Tensor& x_dst,
                                                Sizes src_nodes, Sizes dst_nodes, Sizes edges,
                                                Name group) {
  BipartiteGraphShardInfo info(to_sizes(src_nodes), to_sizes(dst_nodes), to_sizes(edges));
  return fields_of(build_graph_partition_from_shard_info(edge_index, {x_src, x_dst}, info,
                                                         comm_of(group, x_src)));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
materialise(at::IntArrayRef num_nodes, int64_t num_edges, int64_t num_parts,
            at::IntArrayRef dst_splits, at::IntArrayRef edge_splits, int64_t partition_id,
            const at::Tensor& x_src, const at::Tensor& x_dst,
            const std::optional<at::Tensor>& edge_attr, const at::Tensor& edge_index,
            const std::optional<at::Tensor>& cond_src, const std::optional<at::Tensor>& cond_dst) {
  const GraphPartition p = partition_of(num_nodes, num_edges, num_parts, dst_splits, edge_splits);
  auto m = p.materialise(partition_id, {x_src, x_dst}, value_or_undefined(edge_attr), edge_index,
                         pair_or_none(cond_src, cond_dst));
  at::Tensor cs, cd;
  if (m.cond) std::tie(cs, cd) = *m.cond;
  return {m.x_src, m.x_dst, m.edge_attr, m.edge_index, m.src_ids, cs, cd};
}

std::tuple<at::Tensor, at::Tensor> ensure_sorted(const at::Tensor& edge_attr,
                                                 const at::Tensor& edge_index, int64_t num_dst,
                                                 bool edges_are_sharded, Name group,
                                                 bool edges_are_dst_sorted) {
  auto e = translated([&] {
    return ensure_edges_are_dst_sorted(edge_attr, edge_index, num_dst, edges_are_sharded,
                                       comm_of(group, edge_index), edges_are_dst_sorted);
  });
  return {e.edge_attr, e.edge_index};
}

std::tuple<at::Tensor, at::Tensor, std::optional<std::vector<int64_t>>> shard_edges(
    const at::Tensor& edge_attr, const at::Tensor& edge_index, int64_t src_size, int64_t dst_size,
    Name group, bool edges_are_dst_sorted) {
  auto e = translated([&] {
    return shard_edges_1hop(edge_attr, edge_index, src_size, dst_size, comm_of(group, edge_index),
                            edges_are_dst_sorted);
  });
  return {e.edge_attr, e.edge_index, e.edge_shard_sizes};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, std::optional<std::vector<int64_t>>,
           std::optional<std::vector<int64_t>>, std::optional<std::vector<int64_t>>, at::Tensor,
           at::Tensor>
to_local(at::IntArrayRef num_nodes, int64_t num_edges, int64_t num_parts,
         at::IntArrayRef dst_splits, at::IntArrayRef edge_splits, const at::Tensor& x_src,
         const at::Tensor& x_dst, const std::optional<at::Tensor>& edge_attr,
         const at::Tensor& edge_index, Sizes src_nodes, Sizes dst_nodes, Sizes edges, Name group,
         const std::optional<at::Tensor>& cond_src, const std::optional<at::Tensor>& cond_dst,
         c10::string_view src_exchange) {
  TORCH_CHECK_VALUE(src_exchange == "all_gather" || src_exchange == "halo",
                    "graphshard::shard_graph_to_local: src_exchange: expected 'all_gather' or "
                    "'halo', got '", std::string(src_exchange), "'");
  const SrcExchange how = src_exchange == "halo" ? SrcExchange::kHalo : SrcExchange::kAllGather;
  const GraphPartition p = partition_of(num_nodes, num_edges, num_parts, dst_splits, edge_splits);
  BipartiteGraphShardInfo info(to_sizes(src_nodes), to_sizes(dst_nodes), to_sizes(edges));
  auto g = translated([&] {
    return shard_graph_to_local(p, {x_src, x_dst}, value_or_undefined(edge_attr), edge_index, info,
                                comm_of(group, x_src), pair_or_none(cond_src, cond_dst), how);
  });
  at::Tensor cs, cd;
  if (g.cond) std::tie(cs, cd) = *g.cond;
  return {g.x_src,
          g.x_dst,
          g.edge_attr,
          g.edge_index,
          g.shard_info.src_nodes(),
          g.shard_info.dst_nodes(),
          g.shard_info.edges(),
          cs,
          cd};
}

std::tuple<std::vector<at::Tensor>, std::vector<at::Tensor>> chunks(at::IntArrayRef num_nodes,
                                                                    const at::Tensor& edge_attr,
                                                                    const at::Tensor& edge_index,
                                                                    int64_t num_chunks,
                                                                    bool edges_are_dst_sorted) {
  EdgeChunks c =
      num_nodes.size() == 1
          ? sort_edges_1hop_chunks(num_nodes[0], edge_attr, edge_index, num_chunks,
                                   edges_are_dst_sorted)
          : sort_edges_1hop_chunks(pair_of(num_nodes, "sort_edges_1hop_chunks"), edge_attr,
                                   edge_index, num_chunks, edges_are_dst_sorted);
  return {c.edge_attr, c.edge_index};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> drop_unconnected(const at::Tensor& x_src,
                                                                const at::Tensor& edge_index,
                                                                at::IntArrayRef num_nodes) {
  auto d = drop_unconnected_src_nodes(x_src, edge_index,
                                      pair_of(num_nodes, "drop_unconnected_src_nodes"));
  return {d.x_src, d.edge_index, d.kept_ids};
}

std::vector<int64_t> shard_sizes_of(const at::Tensor& tensor, int64_t dim, Name group) {
  return get_shard_sizes(tensor, dim, comm_of(group, tensor));
}

// The shapes flattened, one after the other (a schema has no list of lists).
std::vector<int64_t> shapes_of(const at::Tensor& tensor, int64_t dim, at::IntArrayRef sizes) {
  std::vector<int64_t> flat;
  for (const auto& s : expand_shard_sizes_to_shapes(tensor, dim, sizes.vec())) {
    flat.insert(flat.end(), s.begin(), s.end());
  }
  return flat;
}

// ensure_sharded's check of given sizes (one entry per rank, sizes[r] == x.size(dim)): the C++
// function with sizes set checks and moves nothing.
void check_shard_sizes(const at::Tensor& x, int64_t dim, at::IntArrayRef shard_sizes, Name group) {
  ensure_sharded(x, dim, shard_sizes.vec(), comm_of(group, x));
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(graphshard, m) {
  m.def("sort_edge_index_by_dst(Tensor edge_index, int? max_value=None) -> (Tensor, Tensor)");
  m.def("is_edge_index_dst_sorted(Tensor edge_index) -> bool");
  m.def(
      "build_graph_partition(Tensor edge_index, int num_parts, int[] num_nodes) "
      "-> (int[], int, int, int[], int[])");
  m.def(
      "build_graph_partition_from_shard_info(Tensor edge_index, Tensor x_src, Tensor x_dst, "
      "int[]? src_nodes, int[]? dst_nodes, int[]? edges, str? group) "
      "-> (int[], int, int, int[], int[])");
  m.def(
      "materialise(int[] num_nodes, int num_edges, int num_parts, int[] dst_splits, "
      "int[] edge_splits, int partition_id, Tensor x_src, Tensor x_dst, Tensor? edge_attr, "
      "Tensor edge_index, Tensor? cond_src=None, Tensor? cond_dst=None) "
      "-> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def(
      "ensure_edges_are_dst_sorted(Tensor edge_attr, Tensor edge_index, int num_dst, "
      "bool edges_are_sharded, str? group, bool edges_are_dst_sorted=True) -> (Tensor, Tensor)");
  m.def(
      "shard_edges_1hop(Tensor edge_attr, Tensor edge_index, int src_size, int dst_size, "
      "str? group, bool edges_are_dst_sorted=True) -> (Tensor, Tensor, int[]?)");
  m.def(
      "shard_graph_to_local(int[] num_nodes, int num_edges, int num_parts, int[] dst_splits, "
      "int[] edge_splits, Tensor x_src, Tensor x_dst, Tensor? edge_attr, Tensor edge_index, "
      "int[]? src_nodes, int[]? dst_nodes, int[]? edges, str? group, Tensor? cond_src=None, "
      "Tensor? cond_dst=None, str src_exchange=\"all_gather\") "
      "-> (Tensor, Tensor, Tensor, Tensor, int[]?, int[]?, int[]?, Tensor, Tensor)");
  m.def(
      "sort_edges_1hop_chunks(int[] num_nodes, Tensor edge_attr, Tensor edge_index, "
      "int num_chunks, bool edges_are_dst_sorted=True) -> (Tensor[], Tensor[])");
  m.def(
      "drop_unconnected_src_nodes(Tensor x_src, Tensor edge_index, int[] num_nodes) "
      "-> (Tensor, Tensor, Tensor)");
  m.def("check_shard_sizes(Tensor x, int dim, int[] shard_sizes, str? group) -> ()");
  m.def("get_shard_sizes(Tensor tensor, int dim, str? group=None) -> int[]");
  m.def("expand_shard_sizes_to_shapes(Tensor tensor, int dim, int[] sizes) -> int[]");
}

TORCH_LIBRARY_IMPL(graphshard, CompositeImplicitAutograd, m) {
  m.impl("sort_edge_index_by_dst", sort_by_dst);
  m.impl("is_edge_index_dst_sorted", is_edge_index_dst_sorted);
  m.impl("build_graph_partition", build_partition);
  m.impl("build_graph_partition_from_shard_info", build_partition_from_shard_info);
  m.impl("materialise", materialise);
  m.impl("ensure_edges_are_dst_sorted", ensure_sorted);
  m.impl("shard_edges_1hop", shard_edges);
  m.impl("shard_graph_to_local", to_local);
  m.impl("sort_edges_1hop_chunks", chunks);
  m.impl("drop_unconnected_src_nodes", drop_unconnected);
  m.impl("check_shard_sizes", check_shard_sizes);
  m.impl("get_shard_sizes", shard_sizes_of);
  m.impl("expand_shard_sizes_to_shapes", shapes_of);
}

}  // namespace graphshard::ops
