// Bad-input cases of the halo metadata (halo.h: build_halo_info) and of the partitioner
// (partitioners.h: partition_graph). graph_cases (badinput_graph_cases.cpp) lists them with the
// other graph functions'.
#include <algorithm>
#include <cmath>

#include <ATen/ATen.h>

#include "badinput_catalogue.h"
#include "badinput_graph_case_list.h"
#include "graphshard/halo.h"
#include "graphshard/partitioners.h"

namespace graphshard::props::graph_badinput {

void as_plain_graph(GraphArgs& a) {
  const int64_t n = std::max(a.n_src, a.n_dst);
  a.n_src = a.n_dst = n;
  a.num_nodes = {n, n};
  a.partition = build_graph_partition(a.edge_index, a.world, a.num_nodes);
}

std::vector<BadInputCase> build_halo_info_cases(const GraphFixture& f) {
  CaseList list("build_halo_info", true, f, as_plain_graph,
                [](const GraphArgs& a, const CommPtr& g) {
                  build_halo_info(a.partition, a.edge_index, g, a.shard_info.edges());
                });
  list.add("partition.num_nodes", "n_src != n_dst (not a plain graph)",
           [](GraphArgs& a) { a.partition.num_nodes.first += 1; })
      .add("partition.num_parts", "!= W",
           [](GraphArgs& a) {
             a.partition = build_graph_partition(a.edge_index, a.world + 1, a.num_nodes);
           })
      .add_lengths("partition.dst_splits length",
                   [](GraphArgs& a, WrongLength l) {
                     a.partition.dst_splits = with_length(a.partition.dst_splits, l);
                   })
      .add("partition.dst_splits", "sum != n", [](GraphArgs& a) { a.partition.dst_splits[0] += 1; })
      .add_lengths("partition.edge_splits length",
                   [](GraphArgs& a, WrongLength l) {
                     a.partition.edge_splits = with_length(a.partition.edge_splits, l);
                   })
      .add_lengths("edge_shard_sizes length",
                   [](GraphArgs& a, WrongLength l) {
                     a.shard_info = BipartiteGraphShardInfo(
                         std::nullopt, std::nullopt, with_length(a.partition.edge_splits, l));
                   })
      .add("edge_index", "float dtype", float_edge_index)
      .add("edge_index", "a source id = n", source_at_n_src)
      .add("edge_index", "one edge fewer than partition.num_edges",
           [](GraphArgs& a) { a.edge_index = a.edge_index.narrow(1, 0, a.num_edges - 1); });
  return list.add_unsorted("unsorted (debug checks)", unsort).done();
}

std::vector<BadInputCase> partition_graph_cases(const GraphFixture& f) {
  CaseList list("partition_graph", false, f, nullptr, [](const GraphArgs& a, const CommPtr&) {
    partition_graph(a.edge_index, a.num_nodes, a.count, a.partition_options);
  });
  list.add("num_parts", "0", [](GraphArgs& a) { a.count = 0; })
      .add("num_nodes.first", "negative", [](GraphArgs& a) { a.num_nodes.first = -1; })
      .add("edge_index", "float dtype", float_edge_index)
      .add("edge_index", "a source id = n_src", source_at_n_src)
      .add("edge_index", "a destination id = n_dst", destination_at_n_dst)
      .add("options.plain", "n_src != n_dst",
           [](GraphArgs& a) {
             a.num_nodes.second = a.num_nodes.first + 1 + a.num_nodes.second;
             a.partition_options.plain = true;
           })
      .add("options.dst_coords", "none for hilbert",
           [](GraphArgs& a) { a.partition_options.scheme = PartitionScheme::kHilbert; })
      .add("options.dst_coords", "[n_dst, 2] for latlon_boxes",
           [](GraphArgs& a) {
             a.partition_options.scheme = PartitionScheme::kLatLonBoxes;
             a.partition_options.dst_coords = at::zeros({a.n_dst, 2}, at::kDouble);
           })
      .add("options.dst_coords", "a NaN coordinate for hilbert", [](GraphArgs& a) {
        a.partition_options.scheme = PartitionScheme::kHilbert;
        a.partition_options.dst_coords = at::full({a.n_dst, 3}, std::nan(""), at::kDouble);
      });
  return list.done();
}

}  // namespace graphshard::props::graph_badinput
