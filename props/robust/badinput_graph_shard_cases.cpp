// Bad-input cases of the graph functions that take shard info or shard across the group
// (graph.h): build_graph_partition_from_shard_info, shard_edges_1hop and shard_graph_to_local.
// The rest, and graph_cases that lists them all, are in badinput_graph_cases.cpp.
#include <optional>
#include <utility>

#include <ATen/ATen.h>

#include "badinput_catalogue.h"
#include "badinput_graph_case_list.h"
#include "graphshard/graph.h"

namespace graphshard::props::graph_badinput {
namespace {

at::Tensor piece(const at::Tensor& full, int64_t dim, const std::vector<int64_t>& sizes, int r) {
  const auto [lo, hi] = partition_range(sizes, r);
  return full.narrow(dim, lo, hi - lo);
}

// The sizes lists of shard info at a wrong length, each with the local data of the correct
// list (balanced sources, the partition's destinations and edges), so that nothing but the
// length check can reject them.
void src_nodes_of_length(GraphArgs& a, WrongLength l) {
  const auto src = balanced_sizes(a.n_src, a.world);
  a.x_src = rows(src[a.rank]);
  a.shard_info = BipartiteGraphShardInfo(with_length(src, l));
}
void dst_nodes_of_length(GraphArgs& a, WrongLength l) {
  const auto& dst = a.partition.dst_splits;
  a.x_dst = piece(a.x_dst, 0, dst, a.rank);
  a.shard_info = BipartiteGraphShardInfo(std::nullopt, with_length(dst, l));
}
void edges_of_length(GraphArgs& a, WrongLength l) {
  const auto& edges = a.partition.edge_splits;
  a.edge_attr = piece(a.edge_attr, 0, edges, a.rank);
  a.edge_index = piece(a.edge_index, 1, edges, a.rank);
  a.shard_info = BipartiteGraphShardInfo(std::nullopt, std::nullopt, with_length(edges, l));
}

}  // namespace

std::vector<BadInputCase> build_graph_partition_from_shard_info_cases(const GraphFixture& f) {
  CaseList list(
      "build_graph_partition_from_shard_info", true, f, nullptr,
      [](const GraphArgs& a, const CommPtr& g) {
        build_graph_partition_from_shard_info(a.edge_index, {a.x_src, a.x_dst}, a.shard_info, g);
      });
  list.add("x.first", "x_src rows != src_nodes[rank]",
           [](GraphArgs& a) {
             a.shard_info = BipartiteGraphShardInfo(std::vector<int64_t>(a.world, 1));
             a.x_src = rows(2);
           })
      .add("x.first", "0-d x_src", [](GraphArgs& a) { a.x_src = at::zeros({}); })
      .add("x.second", "undefined x_dst", [](GraphArgs& a) { a.x_dst = at::Tensor(); })
      .add_lengths("shard_info.src_nodes length", src_nodes_of_length)
      .add_lengths("shard_info.dst_nodes length", dst_nodes_of_length)
      .add("shard_info.dst_nodes", "a negative entry",
           [](GraphArgs& a) {
             auto dst = balanced_sizes(a.n_dst, a.world);
             dst[0] = -1;
             a.shard_info = BipartiteGraphShardInfo(std::nullopt, dst);
           })
      .add_lengths("shard_info.edges length", edges_of_length)
      .add("edge_index", "shard_info.edges[rank] != the local edge count",
           [](GraphArgs& a) {
             a.shard_info = BipartiteGraphShardInfo(std::nullopt, std::nullopt,
                                                    std::vector<int64_t>(a.world, a.num_edges + 1));
           })
      .add("edge_index", "float dtype", float_edge_index)
      .add("edge_index", "a destination id = x_dst rows (edges not sharded)", destination_at_n_dst);
  return list.add_unsorted("unsorted, edges not sharded (debug checks)", unsort).done();
}

std::vector<BadInputCase> shard_edges_1hop_cases(const GraphFixture& f) {
  CaseList list("shard_edges_1hop", true, f, nullptr, [](const GraphArgs& a, const CommPtr& g) {
    shard_edges_1hop(a.edge_attr, a.edge_index, a.num_nodes.first, a.num_nodes.second, g,
                     a.sorted_flag);
  });
  list.add("edge_index", "a source id = src_size", source_at_n_src)
      .add("edge_index", "a negative source id",
           [](GraphArgs& a) { a.edge_index = with_entry(a.edge_index, 0, 0, -2); })
      .add("edge_index", "a destination id = dst_size", destination_at_n_dst)
      .add("edge_index", "1-D", [](GraphArgs& a) { a.edge_index = a.edge_index.flatten(); })
      .add("edge_attr", "rows != E", edge_attr_one_row_too_many)
      .add("dst_size", "negative", [](GraphArgs& a) { a.num_nodes.second = -1; })
      .add("src_size", "negative", [](GraphArgs& a) { a.num_nodes.first = -1; });
  return list
      .add_unsorted("unsorted under the sorted flag (debug checks)", unsort_under_sorted_flag)
      .done();
}

std::vector<BadInputCase> shard_graph_to_local_cases(const GraphFixture& f, int world_size) {
  CaseList list("shard_graph_to_local", true, f, nullptr, [](const GraphArgs& a, const CommPtr& g) {
    shard_graph_to_local(a.partition, {a.x_src, a.x_dst}, a.edge_attr, a.edge_index, a.shard_info,
                         g, a.cond);
  });
  const unsigned w1 = kAcceptedAtW1;  // not distributed: everything is returned unchanged
  list.add(
          "partition.num_parts", "!= W",
          [](GraphArgs& a) {
            a.partition = build_graph_partition(a.edge_index, a.world + 1, a.num_nodes);
          },
          w1)
      .add(
          "partition.num_nodes", "negative n_src",
          [](GraphArgs& a) { a.partition.num_nodes.first = -1; }, w1)
      .add_lengths(
          "partition.dst_splits length",
          [](GraphArgs& a, WrongLength l) {
            a.partition.dst_splits = with_length(a.partition.dst_splits, l);
          },
          w1)
      .add(
          "partition.dst_splits", "sum != n_dst",
          [](GraphArgs& a) { a.partition.dst_splits[0] += 1; }, w1)
      .add_lengths(
          "partition.edge_splits length",
          [](GraphArgs& a, WrongLength l) {
            a.partition.edge_splits = with_length(a.partition.edge_splits, l);
          },
          w1)
      .add(
          "x.first", "x_src rows != n_src", [](GraphArgs& a) { a.x_src = rows(a.n_src + 1); }, w1)
      .add(
          "x.second", "x_dst rows != n_dst", [](GraphArgs& a) { a.x_dst = rows(a.n_dst + 1, 1); },
          w1)
      .add("edge_attr", "rows != E", edge_attr_one_row_too_many, w1)
      .add("edge_index", "a source id = n_src", source_at_n_src, w1)
      .add("edge_index", "float dtype", float_edge_index, w1)
      .add(
          "cond.first", "cond_src rows != n_src",
          [](GraphArgs& a) {
            a.cond = PairTensor{rows(a.n_src + 2), rows(a.n_dst)};
          },
          w1)
      .add_lengths("shard_info.src_nodes length", src_nodes_of_length, w1)
      .add(
          "shard_info.src_nodes", "sum != n_src",
          [](GraphArgs& a) {
            const auto src = balanced_sizes(a.n_src + 1, a.world);
            a.shard_info = BipartiteGraphShardInfo(src);
            a.x_src = rows(src[a.rank]);
          },
          w1)
      .add(
          "shard_info.dst_nodes", "!= partition.dst_splits",
          [](GraphArgs& a) {
            auto dst = a.partition.dst_splits;  // one destination moved from part 1 to part 0
            dst[0] += 1;
            dst[1] -= 1;
            a.shard_info = BipartiteGraphShardInfo(std::nullopt, dst);
            a.x_dst = piece(a.x_dst, 0, dst, a.rank);
          },
          w1 | kTwoRanks)
      .add_lengths("shard_info.dst_nodes length", dst_nodes_of_length, w1)
      .add(
          "x.second", "sharded x_dst rows != dst_splits[rank]",
          [](GraphArgs& a) {
            a.shard_info = BipartiteGraphShardInfo(std::nullopt, a.partition.dst_splits);
            a.x_dst = rows(a.partition.dst_splits[a.rank] + 1, 1);
          },
          w1)
      .add(
          "shard_info.edges", "!= partition.edge_splits",
          [](GraphArgs& a) {
            auto edges = a.partition.edge_splits;  // one edge moved to the next part
            size_t q = 0;
            while (edges[q] == 0) ++q;
            edges[q] -= 1;
            edges[(q + 1) % edges.size()] += 1;
            a.shard_info = BipartiteGraphShardInfo(std::nullopt, std::nullopt, edges);
            a.edge_attr = piece(a.edge_attr, 0, edges, a.rank);
            a.edge_index = piece(a.edge_index, 1, edges, a.rank);
          },
          w1 | kTwoRanks)
      .add_lengths("shard_info.edges length", edges_of_length, w1);
  const GraphPartition p = build_graph_partition(f.edge_index, world_size, {f.n_src, f.n_dst});
  bool every_part_holds_edges = true;
  for (int64_t s : p.edge_splits) every_part_holds_edges = every_part_holds_edges && s > 0;
  if (every_part_holds_edges) {
    list.add(
        "edge_index", "sharded edges whose destinations lie past this rank's range",
        [](GraphArgs& a) {
          const auto& splits = a.partition.edge_splits;
          a.shard_info = BipartiteGraphShardInfo(std::nullopt, std::nullopt, splits);
          a.edge_attr = piece(a.edge_attr, 0, splits, a.rank);
          a.edge_index = piece(a.edge_index, 1, splits, a.rank).clone();
          a.edge_index[1].fill_(partition_range(a.partition.dst_splits, a.rank).second);
        },
        w1);
  }
  return list.add_unsorted("unsorted, edges not sharded (debug checks)", unsort, w1).done();
}

}  // namespace graphshard::props::graph_badinput
