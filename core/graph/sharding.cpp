// Distributed graph functions: partition metadata from shard info, sharding the edges, and
// moving a graph to its local subgraph. Communication goes through the primitives only.
#include <ATen/ATen.h>

#include "graph_internal.h"
#include "graphshard/halo.h"
#include "graphshard/primitives.h"

namespace graphshard {

using detail::check;
using detail::check_count;
using detail::check_edge_index;
using detail::check_rows;
using detail::fail;

namespace {

// Node count of one side: sum(sizes) when sharded (x has sizes[r] rows), else x.size(0).
int64_t side_count(const char* fn, const char* sizes_arg, const char* x_arg,
                   const ShardSizes& sizes, const at::Tensor& x, int world, int rank) {
  if (!x.defined() || x.dim() < 1) {
    fail(fn, x_arg, "a tensor with at least one dimension",
         x.defined() ? "a 0-d tensor" : "undefined", rank);
  }
  if (!sizes) return x.size(0);
  detail::check_sizes(fn, sizes_arg, *sizes, world, rank);
  check_rows(fn, x_arg, x, (*sizes)[rank], rank);
  return total(*sizes);
}

}  // namespace

GraphPartition build_graph_partition_from_shard_info(const at::Tensor& edge_index,
                                                     const PairTensor& x,
                                                     const BipartiteGraphShardInfo& shard_info,
                                                     const CommPtr& group) {
  constexpr const char* fn = "build_graph_partition_from_shard_info";
  const int rank = detail::rank_of(group), world = detail::world_of(group);
  check_edge_index(fn, edge_index, rank);
  const int64_t n_src = side_count(fn, "shard_info.src_nodes", "x.first (x_src)",
                                   shard_info.src_nodes(), x.first, world, rank);
  const int64_t n_dst = side_count(fn, "shard_info.dst_nodes", "x.second (x_dst)",
                                   shard_info.dst_nodes(), x.second, world, rank);
  if (!shard_info.edges_are_sharded()) {
    return detail::build_graph_partition_impl(fn, edge_index, world, {n_src, n_dst}, rank);
  }
  const auto& edges = *shard_info.edges();
  detail::check_sizes(fn, "shard_info.edges", edges, world, rank);
  check(edge_index.size(1) == edges[rank], fn, "edge_index",
        std::to_string(edges[rank]) + " edges (shard_info.edges[rank])", edge_index.size(1), rank);
  GraphPartition p;
  p.num_nodes = {n_src, n_dst};
  p.num_edges = total(edges);
  p.num_parts = world;
  p.dst_splits =
      shard_info.dst_is_sharded() ? *shard_info.dst_nodes() : balanced_sizes(n_dst, world);
  p.edge_splits = edges;
  return p;
}

ShardedEdges shard_edges_1hop(const at::Tensor& edge_attr, const at::Tensor& edge_index,
                              int64_t src_size, int64_t dst_size, const CommPtr& group,
                              bool edges_are_dst_sorted) {
  constexpr const char* fn = "shard_edges_1hop";
  const int rank = detail::rank_of(group), world = detail::world_of(group);
  check_edge_index(fn, edge_index, rank);
  check_count(fn, "src_size", src_size, rank);
  check_count(fn, "dst_size", dst_size, rank);
  check_rows(fn, "edge_attr", edge_attr, edge_index.size(1), rank);
  const bool distributed = model_is_distributed(group);
  // Sorted, distributed, on CPU and with no precondition scans (which would check the ids and the
  // order first): this rank's edges, when a copy (a piece that is not contiguous), are copied in
  // the pass that checks every id, so the whole index is read once, not twice.
  std::vector<int64_t> sizes;
  at::Tensor copied;  // this rank's edges, defined when that pass found every id in range
  if (distributed && edges_are_dst_sorted && edge_index.device().is_cpu() &&
      !cpu::scan_preconditions()) {
    sizes = detail::sorted_edge_splits(edge_index, balanced_sizes(dst_size, world));
    const auto [lo, hi] = partition_range(sizes, rank);
    if (!edge_index.narrow(1, lo, hi - lo).is_contiguous()) {
      copied = cpu::columns_if_in_range(edge_index, lo, hi, src_size, dst_size);
    }
  }
  // Every rank holds the whole index: an id out of range fails every rank here.
  if (!copied.defined()) detail::check_ids(fn, edge_index, src_size, dst_size, rank);
  if (edges_are_dst_sorted && debug_checks()) detail::check_sorted(fn, edge_index, rank);
  if (!distributed) return {edge_attr, edge_index, std::nullopt};

  ShardedEdges out;
  if (!edges_are_dst_sorted) {
    const at::Tensor perm =
        detail::stable_sort_perm(edge_index.select(0, 1), dst_size, world, &sizes);
    // The ids (no gradient): only this rank's block is gathered, row by row (a 1-D gather each,
    // not a gather of whole columns of the whole index). edge_attr is regrouped whole and sharded,
    // so that its gradient is gathered back to every rank as shard_tensor's backward does.
    const auto [lo, hi] = partition_range(sizes, rank);
    const at::Tensor mine = perm.narrow(0, lo, hi - lo);
    out.edge_index = at::empty({2, hi - lo}, edge_index.options());
    for (int64_t row = 0; row < 2; ++row) {
      at::Tensor dst = out.edge_index.select(0, row);
      at::index_select_out(dst, edge_index.select(0, row), 0, mine);
    }
    out.edge_attr = shard_tensor(edge_attr.index_select(0, perm), 0, sizes, group);
  } else {
    if (sizes.empty()) {  // not computed above
      sizes = detail::sorted_edge_splits(edge_index, balanced_sizes(dst_size, world));
    }
    out.edge_index = copied.defined() ? copied : shard_tensor(edge_index, 1, sizes, group);
    out.edge_attr = shard_tensor(edge_attr, 0, sizes, group);
  }
  out.edge_shard_sizes = std::move(sizes);
  return out;
}

LocalGraph shard_graph_to_local(const GraphPartition& partition, const PairTensor& x,
                                const at::Tensor& edge_attr, const at::Tensor& edge_index,
                                const BipartiteGraphShardInfo& shard_info, const CommPtr& group,
                                const std::optional<PairTensor>& cond, SrcExchange src_exchange) {
  constexpr const char* fn = "shard_graph_to_local";
  if (!model_is_distributed(group)) {
    return {x.first, x.second, edge_attr, edge_index, shard_info, cond};
  }
  const int rank = group->rank(), world = group->size();
  const auto [n_src, n_dst] = partition.num_nodes;
  check(partition.num_parts == world, fn, "partition.num_parts",
        std::to_string(world) + " (the group size)", partition.num_parts, rank);
  check_count(fn, "partition.num_nodes.first (n_src)", n_src, rank);
  detail::check_sizes(fn, "partition.dst_splits", partition.dst_splits, world, rank);
  detail::check_sizes(fn, "partition.edge_splits", partition.edge_splits, world, rank);
  check(total(partition.dst_splits) == n_dst, fn, "partition.dst_splits",
        "sizes summing to n_dst = " + std::to_string(n_dst), partition.dst_splits, rank);
  check(total(partition.edge_splits) == partition.num_edges, fn, "partition.edge_splits",
        "sizes summing to num_edges = " + std::to_string(partition.num_edges),
        partition.edge_splits, rank);
  check_edge_index(fn, edge_index, rank);

  // Sources: sharded pieces that add up to n_src, or all n_src rows.
  if (shard_info.src_is_sharded()) {
    detail::check_sizes(fn, "shard_info.src_nodes", *shard_info.src_nodes(), world, rank);
    check(total(*shard_info.src_nodes()) == n_src, fn, "shard_info.src_nodes",
          "sizes summing to n_src = " + std::to_string(n_src), *shard_info.src_nodes(), rank);
  }
  const int64_t src_rows = shard_info.src_is_sharded() ? (*shard_info.src_nodes())[rank] : n_src;
  check_rows(fn, "x.first (x_src)", x.first, src_rows, rank);
  if (cond) check_rows(fn, "cond.first (cond_src)", cond->first, src_rows, rank);
  // Destinations.
  if (shard_info.dst_is_sharded()) {
    // The length first, so a list of the wrong length is reported as one, as everywhere else.
    detail::check_sizes(fn, "shard_info.dst_nodes", *shard_info.dst_nodes(), world, rank);
    check(*shard_info.dst_nodes() == partition.dst_splits, fn, "shard_info.dst_nodes",
          partition.dst_splits, *shard_info.dst_nodes(), rank);
  }
  check_rows(fn, "x.second (x_dst)", x.second,
             shard_info.dst_is_sharded() ? partition.dst_splits[rank] : n_dst, rank);
  // Edges.
  if (shard_info.edges_are_sharded()) {
    detail::check_sizes(fn, "shard_info.edges", *shard_info.edges(), world, rank);
    check(*shard_info.edges() == partition.edge_splits, fn, "shard_info.edges",
          partition.edge_splits, *shard_info.edges(), rank);
  }
  const int64_t edge_cols =
      shard_info.edges_are_sharded() ? partition.edge_splits[rank] : partition.num_edges;
  check(edge_index.size(1) == edge_cols, fn, "edge_index", std::to_string(edge_cols) + " edges",
        edge_index.size(1), rank);
  check_rows(fn, "edge_attr", edge_attr, edge_cols, rank);

  const auto [dlo, dhi] = partition_range(partition.dst_splits, rank);
  if (shard_info.edges_are_sharded()) {
    // Only this rank holds these edges: a bad id fails this rank, its peers see a CommError.
    detail::check_ids(fn, edge_index, n_src, n_dst, rank);
    detail::check_dst_range(fn, edge_index, dlo, dhi, rank);
  } else {
    // Every rank holds every edge: all check the same, so all fail together.
    detail::check_ids(fn, edge_index, n_src, n_dst, rank);
    if (debug_checks()) detail::check_sorted(fn, edge_index, rank);
    int64_t start = 0;
    for (int q = 0; q < world; ++q) {
      const auto [lo, hi] = partition_range(partition.dst_splits, q);
      detail::check_dst_ends(fn, edge_index.narrow(1, start, partition.edge_splits[q]), lo, hi,
                             rank);
      start += partition.edge_splits[q];
    }
  }

  LocalGraph out;
  out.shard_info =
      BipartiteGraphShardInfo(shard_info.src_nodes(), partition.dst_splits, partition.edge_splits);
  out.x_dst = shard_info.dst_is_sharded() ? x.second
                                          : shard_tensor(x.second, 0, partition.dst_splits, group);
  at::Tensor ei = edge_index;
  out.edge_attr = edge_attr;
  if (!shard_info.edges_are_sharded()) {
    // The rank's columns as a view: the ids carry no gradient and local_edge_index reads them
    // strided into a new tensor, so shard_tensor's copy of a non-contiguous piece is not needed.
    const auto [elo, ehi] = partition_range(partition.edge_splits, rank);
    ei = edge_index.narrow(1, elo, ehi - elo);
    out.edge_attr = shard_tensor(edge_attr, 0, partition.edge_splits, group);
  }
  const detail::LocalEdges used = detail::local_edge_index(fn, ei, n_src, dlo, rank);
  out.edge_index = used.edge_index;
  if (src_exchange == SrcExchange::kHalo && shard_info.src_is_sharded()) {
    // The used sources' rows from their owners, then in ascending global id as below.
    const detail::OwnerRows rows = detail::rows_from_owners(
        fn, used.kept.to(at::kLong), *shard_info.src_nodes(), group, /*debug=*/false);
    out.x_src = halo_exchange(x.first, rows.info, group).index_select(0, rows.order);
    if (cond) {
      out.cond = PairTensor{
          halo_exchange(cond->first, rows.info, group).index_select(0, rows.order), cond->second};
    }
    return out;
  }
  const at::Tensor x_src_full =
      sync_tensor(x.first, 0, shard_info.src_nodes(), group, shard_info.src_is_sharded());
  out.x_src = x_src_full.index_select(0, used.kept);
  if (cond) {
    const at::Tensor cond_src_full =
        sync_tensor(cond->first, 0, shard_info.src_nodes(), group, shard_info.src_is_sharded());
    out.cond = PairTensor{cond_src_full.index_select(0, used.kept), cond->second};
  }
  return out;
}

}  // namespace graphshard
