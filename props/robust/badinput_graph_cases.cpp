// Bad-input cases of the graph functions (SPEC §3, §5; graph.h). Each case starts from correct
// arguments for this rank (GraphArgs, from a dst-sorted fixture) and spoils one of them.
// The sorting and partitioning functions are here, the sharding ones in
// badinput_graph_shard_cases.cpp; graph_cases lists both.
#include <optional>
#include <utility>

#include <ATen/ATen.h>

#include "badinput_catalogue.h"
#include "badinput_graph_case_list.h"
#include "graphshard/graph.h"

namespace graphshard::props {
namespace graph_badinput {

// The shared helpers declared in badinput_graph_case_list.h.
at::Tensor rows(int64_t n, int64_t cols) {
  return at::arange(n * cols, at::kFloat).reshape({n, cols}).requires_grad_(true);
}

GraphArgs valid_args(const GraphFixture& f, int world, int rank) {
  GraphArgs a;
  a.world = world;
  a.rank = rank;
  a.n_src = f.n_src;
  a.n_dst = f.n_dst;
  a.num_edges = f.edge_index.size(1);
  a.edge_index = f.edge_index.clone();
  a.edge_attr = rows(a.num_edges);
  a.x_src = rows(f.n_src);
  a.x_dst = rows(f.n_dst, 1);
  a.num_nodes = {f.n_src, f.n_dst};
  a.partition = build_graph_partition(f.edge_index, world, a.num_nodes);
  a.sorted_flag = f.sorted_flag;
  return a;
}

at::Tensor with_entry(const at::Tensor& ei, int64_t row, int64_t col, int64_t value) {
  at::Tensor bad = ei.clone();
  bad[row][col] = value;
  return bad;
}

bool can_unsort(const GraphFixture& f) {
  const at::Tensor dst = f.edge_index[1];
  return dst[0].item<int64_t>() != dst[-1].item<int64_t>();
}
void unsort(GraphArgs& a) {
  a.edge_index = a.edge_index.flip(1);
}
void unsort_under_sorted_flag(GraphArgs& a) {
  unsort(a);
  a.sorted_flag = true;
}

CaseList& CaseList::add(std::string arg, std::string what, Spoil spoil, unsigned options) {
  BadInputCase k{fn_, std::move(arg), std::move(what)};
  k.debug_checks = options & kDebugChecks;
  k.accepted_at_w1 = options & kAcceptedAtW1;
  k.min_world = options & kTwoRanks ? 2 : 1;
  k.make = [f = f_, setup = setup_, call = call_, with_group = with_group_,
            spoil = std::move(spoil)](const CommPtr& g, int r) {
    GraphArgs a = valid_args(f, g->size(), r);
    if (setup) setup(a);
    spoil(a);
    std::vector<at::Tensor> inputs = {a.edge_index, a.edge_attr, a.x_src, a.x_dst};
    if (a.cond) inputs.insert(inputs.end(), {a.cond->first, a.cond->second});
    inputs.insert(inputs.end(), a.halo.send_indices.begin(), a.halo.send_indices.end());
    if (a.halo.recv_global_ids) {
      inputs.insert(inputs.end(), a.halo.recv_global_ids->begin(), a.halo.recv_global_ids->end());
    }
    return BadCall{std::move(inputs), [a, call, g] { call(a, g); }, with_group ? r : 0};
  };
  cases_.push_back(std::move(k));
  return *this;
}

void float_edge_index(GraphArgs& a) {
  a.edge_index = a.edge_index.to(at::kFloat);
}
void three_row_edge_index(GraphArgs& a) {
  a.edge_index = at::cat({a.edge_index, a.edge_index.narrow(0, 0, 1)});
}
void source_at_n_src(GraphArgs& a) {
  a.edge_index = with_entry(a.edge_index, 0, a.num_edges - 1, a.n_src);
}
void destination_at_n_dst(GraphArgs& a) {
  a.edge_index = with_entry(a.edge_index, 1, a.num_edges - 1, a.n_dst);
}
void edge_attr_one_row_too_many(GraphArgs& a) {
  a.edge_attr = rows(a.num_edges + 1);
}

namespace {

std::vector<BadInputCase> sort_edge_index_by_dst_cases(const GraphFixture& f) {
  const int64_t max_dst = f.edge_index[1].max().item<int64_t>();
  return CaseList("sort_edge_index_by_dst", false, f, nullptr,
                  [](const GraphArgs& a, const CommPtr&) {
                    sort_edge_index_by_dst(a.edge_index, a.max_value);
                  })
      .add("edge_index", "shape [4, E]",
           [](GraphArgs& a) {
             a.edge_index = a.edge_index.repeat({2, 1});
           })
      .add("edge_index", "shape [3, E]", three_row_edge_index)
      .add("edge_index", "1-D (row 0 only)", [](GraphArgs& a) { a.edge_index = a.edge_index[0]; })
      .add("edge_index", "float dtype", float_edge_index)
      .add("edge_index", "int16 dtype",
           [](GraphArgs& a) { a.edge_index = a.edge_index.to(at::kShort); })
      .add("edge_index", "undefined", [](GraphArgs& a) { a.edge_index = at::Tensor(); })
      .add("edge_index", "a destination id at max_value",
           [max_dst](GraphArgs& a) { a.max_value = max_dst; })
      .add("edge_index", "a negative destination id",
           [](GraphArgs& a) { a.edge_index = with_entry(a.edge_index, 1, a.num_edges / 2, -1); })
      .add("max_value", "negative", [](GraphArgs& a) { a.max_value = -1; })
      .done();
}

std::vector<BadInputCase> is_edge_index_dst_sorted_cases(const GraphFixture& f) {
  return CaseList(
             "is_edge_index_dst_sorted", false, f, nullptr,
             [](const GraphArgs& a, const CommPtr&) { is_edge_index_dst_sorted(a.edge_index); })
      .add("edge_index", "shape [1, 2, E]",
           [](GraphArgs& a) { a.edge_index = a.edge_index.unsqueeze(0); })
      .add("edge_index", "shape [3, E]", three_row_edge_index)
      .add("edge_index", "float dtype", float_edge_index)
      .add("edge_index", "undefined", [](GraphArgs& a) { a.edge_index = at::Tensor(); })
      .done();
}

std::vector<BadInputCase> build_graph_partition_cases(const GraphFixture& f) {
  CaseList list("build_graph_partition", false, f, nullptr, [](const GraphArgs& a, const CommPtr&) {
    build_graph_partition(a.edge_index, a.count, a.num_nodes);
  });
  list.add("num_parts", "0", [](GraphArgs& a) { a.count = 0; })
      .add("num_parts", "negative", [](GraphArgs& a) { a.count = -3; })
      .add("num_nodes", "negative n_dst", [](GraphArgs& a) { a.num_nodes.second = -1; })
      .add("num_nodes", "negative n_src", [](GraphArgs& a) { a.num_nodes.first = -1; })
      .add("edge_index", "the last destination = n_dst", destination_at_n_dst)
      .add("edge_index", "the first destination negative",
           [](GraphArgs& a) { a.edge_index = with_entry(a.edge_index, 1, 0, -1); })
      .add("edge_index", "float dtype", float_edge_index)
      .add("edge_index", "shape [3, E]", three_row_edge_index)
      .add("edge_index", "a source id = n_src (debug checks)", source_at_n_src, kDebugChecks);
  return list.add_unsorted("unsorted (debug checks)", unsort).done();
}

// materialise checks the splits against the partition's num_parts (= W here), not the group.
std::function<std::string(WrongLength)> splits_of_length(const std::string& splits) {
  return [splits](WrongLength l) {
    switch (l) {
      case WrongLength::kOneMore:
        return splits + " of num_parts + 1 entries";
      case WrongLength::kOneLess:
        return splits + " of num_parts - 1 entries";
      case WrongLength::kEmpty:
        break;
    }
    return splits + " empty";
  };
}

std::vector<BadInputCase> materialise_cases(const GraphFixture& f) {
  CaseList list(
      "GraphPartition::materialise", false, f,
      [](GraphArgs& a) { a.count = a.rank; },  // each rank materialises its part
      [](const GraphArgs& a, const CommPtr&) {
        a.partition.materialise(a.count, {a.x_src, a.x_dst}, a.edge_attr, a.edge_index, a.cond);
      });
  list.add("partition_id", "= num_parts", [](GraphArgs& a) { a.count = a.partition.num_parts; })
      .add("partition_id", "-1", [](GraphArgs& a) { a.count = -1; })
      .add("x.first", "x_src rows != n_src", [](GraphArgs& a) { a.x_src = rows(a.n_src + 1); })
      .add("x.second", "x_dst rows != n_dst", [](GraphArgs& a) { a.x_dst = rows(a.n_dst + 1, 1); })
      .add("edge_attr", "rows != num_edges", edge_attr_one_row_too_many)
      .add("edge_index", "fewer edges than the partition",
           [](GraphArgs& a) { a.edge_index = a.edge_index.narrow(1, 1, a.num_edges - 1); })
      .add("edge_index", "float dtype", float_edge_index)
      .add("cond.first", "cond_src rows != n_src",
           [](GraphArgs& a) {
             a.cond = PairTensor{rows(a.n_src + 2), rows(a.n_dst)};
           })
      .add("cond.second", "cond_dst rows != n_dst",
           [](GraphArgs& a) {
             a.cond = PairTensor{rows(a.n_src), rows(a.n_dst + 1)};
           })
      .add("edge_index", "every source id = n_src (a part holding edges)",
           [](GraphArgs& a) {
             a.edge_index = a.edge_index.clone();
             a.edge_index[0].fill_(a.n_src);
             std::vector<int64_t> held;  // the parts holding edges, one per rank in turn
             for (int64_t i = 0; i < a.partition.num_parts; ++i) {
               if (a.partition.edge_splits[i] > 0) held.push_back(i);
             }
             a.count = held[a.rank % held.size()];
           })
      .add_lengths_named("partition", splits_of_length("dst_splits"),
                         [](GraphArgs& a, WrongLength l) {
                           a.partition.dst_splits = with_length(a.partition.dst_splits, l);
                         })
      .add_lengths_named("partition", splits_of_length("edge_splits"),
                         [](GraphArgs& a, WrongLength l) {
                           a.partition.edge_splits = with_length(a.partition.edge_splits, l);
                         })
      .add("partition", "a negative dst split (the splits still sum to n_dst)",
           [](GraphArgs& a) {
             a.partition.num_parts = 2;
             a.partition.dst_splits = {-1, a.n_dst + 1};
             a.partition.edge_splits = {0, a.num_edges};
             a.count = a.rank % 2;
           })
      .add("partition", "a negative edge split (the splits still sum to num_edges)",
           [](GraphArgs& a) {
             a.partition.num_parts = 2;
             a.partition.dst_splits = balanced_sizes(a.n_dst, 2);
             a.partition.edge_splits = {-1, a.num_edges + 1};
             a.count = a.rank % 2;
           })
      .add("partition", "negative n_src", [](GraphArgs& a) { a.partition.num_nodes.first = -1; });
  return list.add_unsorted("unsorted (debug checks)", unsort).done();
}

std::vector<BadInputCase> ensure_edges_are_dst_sorted_cases(const GraphFixture& f) {
  const int64_t max_dst = f.edge_index[1].max().item<int64_t>();
  CaseList list("ensure_edges_are_dst_sorted", true, f, nullptr,
                [](const GraphArgs& a, const CommPtr& g) {
                  ensure_edges_are_dst_sorted(a.edge_attr, a.edge_index, a.num_nodes.second,
                                              a.edges_are_sharded, g, a.sorted_flag);
                });
  list.add("edge_attr", "rows != E", edge_attr_one_row_too_many)
      .add("edge_index", "float dtype", float_edge_index)
      .add("num_dst", "negative", [](GraphArgs& a) { a.num_nodes.second = -1; })
      .add("edge_index", "a destination id >= num_dst (sorting path)",
           [max_dst](GraphArgs& a) {
             a.num_nodes.second = max_dst;
             a.sorted_flag = false;
           })
      .add(
          "edge_index", "a destination id >= num_dst (flag sorted, debug checks)",
          [max_dst](GraphArgs& a) {
            a.num_nodes.second = max_dst;
            a.sorted_flag = true;
          },
          kDebugChecks)
      .add(
          "edges_are_sharded", "sharded, unsorted edges in a distributed group",
          [](GraphArgs& a) {
            a.edges_are_sharded = true;
            a.sorted_flag = false;
          },
          kAcceptedAtW1);
  return list
      .add_unsorted("unsorted under the sorted flag (debug checks)", unsort_under_sorted_flag)
      .done();
}

std::vector<BadInputCase> sort_edges_1hop_chunks_cases(const GraphFixture& f) {
  CaseList list(
      "sort_edges_1hop_chunks", false, f, nullptr, [](const GraphArgs& a, const CommPtr&) {
        if (a.plain_num_nodes) {
          sort_edges_1hop_chunks(*a.plain_num_nodes, a.edge_attr, a.edge_index, a.count,
                                 a.sorted_flag);
        } else {
          sort_edges_1hop_chunks(a.num_nodes, a.edge_attr, a.edge_index, a.count, a.sorted_flag);
        }
      });
  list.add("num_chunks", "0", [](GraphArgs& a) { a.count = 0; })
      .add("edge_attr", "rows != E", edge_attr_one_row_too_many)
      .add("edge_index", "a destination id = n_dst", destination_at_n_dst)
      .add("edge_index", "a source id = n_src", source_at_n_src)
      .add("edge_index", "float dtype", float_edge_index)
      .add("num_nodes", "a negative node count (plain graph)",
           [](GraphArgs& a) { a.plain_num_nodes = -1; })
      .add("num_nodes", "negative n_src", [](GraphArgs& a) { a.num_nodes.first = -1; });
  return list
      .add_unsorted("unsorted under the sorted flag (debug checks)", unsort_under_sorted_flag)
      .done();
}

std::vector<BadInputCase> drop_unconnected_src_nodes_cases(const GraphFixture& f) {
  return CaseList("drop_unconnected_src_nodes", false, f, nullptr,
                  [](const GraphArgs& a, const CommPtr&) {
                    drop_unconnected_src_nodes(a.x_src, a.edge_index, a.num_nodes);
                  })
      .add("x_src", "rows != n_src", [](GraphArgs& a) { a.x_src = rows(a.n_src + 1); })
      .add("edge_index", "a source id = n_src", source_at_n_src)
      .add("edge_index", "a negative source id",
           [](GraphArgs& a) { a.edge_index = with_entry(a.edge_index, 0, a.num_edges / 2, -3); })
      .add("edge_index", "a destination id = n_dst", destination_at_n_dst)
      .add("edge_index", "int16 dtype",
           [](GraphArgs& a) { a.edge_index = a.edge_index.to(at::kShort); })
      .add("num_nodes", "negative n_src", [](GraphArgs& a) { a.num_nodes.first = -1; })
      .done();
}

}  // namespace
}  // namespace graph_badinput

std::vector<BadInputCase> graph_cases(const GraphFixture& f, int world_size) {
  using namespace graph_badinput;
  std::vector<BadInputCase> out;
  for (auto cases_of_one :
       {sort_edge_index_by_dst_cases, is_edge_index_dst_sorted_cases, build_graph_partition_cases,
        build_graph_partition_from_shard_info_cases, materialise_cases,
        ensure_edges_are_dst_sorted_cases, shard_edges_1hop_cases, sort_edges_1hop_chunks_cases,
        drop_unconnected_src_nodes_cases, build_halo_info_cases, halo_exchange_cases,
        verify_halo_info_cases, partition_graph_cases}) {
    for (auto& k : cases_of_one(f)) out.push_back(std::move(k));
  }
  for (auto& k : shard_graph_to_local_cases(f, world_size)) out.push_back(std::move(k));
  return out;
}

}  // namespace graphshard::props
