// Bad-input cases of the graph functions (SPEC §3, §5; graph.h). Each case starts from correct
// arguments for this rank (GraphArgs, from a dst-sorted fixture) and spoils one of them.
#include <optional>
#include <utility>

#include <ATen/ATen.h>

#include "badinput_catalogue.h"
#include "graphshard/graph.h"

namespace graphshard::props {
namespace {

// Every argument any graph function takes, correct for one rank of a world of W.
struct GraphArgs {
  int world = 1, rank = 0;
  int64_t n_src = 0, n_dst = 0, num_edges = 0;  // the fixture's
  at::Tensor edge_index, edge_attr, x_src, x_dst;
  std::optional<PairTensor> cond;
  std::pair<int64_t, int64_t> num_nodes;
  std::optional<int64_t> plain_num_nodes;  // sort_edges_1hop_chunks(int64_t num_nodes, ...)
  int64_t count = 2;                       // num_parts, num_chunks or partition_id
  std::optional<int64_t> max_value;
  GraphPartition partition;  // W parts
  BipartiteGraphShardInfo shard_info;
  bool sorted_flag = true, edges_are_sharded = false;
};

using Spoil = std::function<void(GraphArgs&)>;

// Floating rows that require grad (the differentiable path of the functions).
at::Tensor rows(int64_t n, int64_t cols = 2) {
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

// A copy of ei with entry (row, col) set to value.
at::Tensor with_entry(const at::Tensor& ei, int64_t row, int64_t col, int64_t value) {
  at::Tensor bad = ei.clone();
  bad[row][col] = value;
  return bad;
}

// Reversed edges are unsorted when the first and last destinations differ.
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

at::Tensor piece(const at::Tensor& full, int64_t dim, const std::vector<int64_t>& sizes, int r) {
  const auto [lo, hi] = partition_range(sizes, r);
  return full.narrow(dim, lo, hi - lo);
}

enum Options : unsigned {
  kDebugChecks = 1,   // a check made only under set_debug_checks(true)
  kAcceptedAtW1 = 2,  // a group of one rank is not distributed: the call must succeed
  kTwoRanks = 4,      // needs W >= 2 to be expressed
};

// The cases of one function: its name, whether it takes the group (its messages then name the
// caller's rank), how its correct arguments differ from the defaults, and the call.
class CaseList {
 public:
  using Call = std::function<void(const GraphArgs&, const CommPtr&)>;
  CaseList(const char* fn, bool with_group, const GraphFixture& f, Spoil setup, Call call)
      : fn_(fn), with_group_(with_group), f_(f), setup_(std::move(setup)), call_(std::move(call)) {}

  CaseList& add(std::string arg, std::string what, Spoil spoil, unsigned options = 0) {
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
      return BadCall{std::move(inputs), [a, call, g] { call(a, g); }, with_group ? r : 0};
    };
    cases_.push_back(std::move(k));
    return *this;
  }
  // Edges that are not dst-sorted where sorted ones are required: checked under debug checks
  // only; left out when reversing the edges would not unsort them.
  CaseList& add_unsorted(std::string what, Spoil spoil, unsigned options = 0) {
    if (!can_unsort(f_)) return *this;
    return add("edge_index", std::move(what), std::move(spoil), options | kDebugChecks);
  }
  std::vector<BadInputCase> done() { return std::move(cases_); }

 private:
  const char* fn_;
  bool with_group_;
  GraphFixture f_;
  Spoil setup_;
  Call call_;
  std::vector<BadInputCase> cases_;
};

// Spoils shared by several functions.
void float_edge_index(GraphArgs& a) {
  a.edge_index = a.edge_index.to(at::kFloat);
}
void three_row_edge_index(GraphArgs& a) {
  a.edge_index = at::cat({a.edge_index, a.edge_index.narrow(0, 0, 1)});
}
void source_at_n_src(GraphArgs& a) {
  a.edge_index = with_entry(a.edge_index, 0, a.num_edges - 1, a.n_src);
}
void destination_at_n_dst(GraphArgs& a) {  // the last edge: still dst-sorted
  a.edge_index = with_entry(a.edge_index, 1, a.num_edges - 1, a.n_dst);
}
void edge_attr_one_row_too_many(GraphArgs& a) {
  a.edge_attr = rows(a.num_edges + 1);
}

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
      .add("shard_info.src_nodes", "W + 1 entries",
           [](GraphArgs& a) {
             a.shard_info = BipartiteGraphShardInfo(std::vector<int64_t>(a.world + 1, 1));
           })
      .add("shard_info.dst_nodes", "a negative entry",
           [](GraphArgs& a) {
             auto dst = balanced_sizes(a.n_dst, a.world);
             dst[0] = -1;
             a.shard_info = BipartiteGraphShardInfo(std::nullopt, dst);
           })
      .add("shard_info.edges", "W + 1 entries",
           [](GraphArgs& a) {
             a.shard_info = BipartiteGraphShardInfo(std::nullopt, std::nullopt,
                                                    std::vector<int64_t>(a.world + 1, 0));
           })
      .add("edge_index", "shard_info.edges[rank] != the local edge count",
           [](GraphArgs& a) {
             a.shard_info = BipartiteGraphShardInfo(std::nullopt, std::nullopt,
                                                    std::vector<int64_t>(a.world, a.num_edges + 1));
           })
      .add("edge_index", "float dtype", float_edge_index)
      .add("edge_index", "a destination id = x_dst rows (edges not sharded)", destination_at_n_dst);
  return list.add_unsorted("unsorted, edges not sharded (debug checks)", unsort).done();
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
      .add("partition", "dst_splits of num_parts + 1 entries",
           [](GraphArgs& a) { a.partition.dst_splits.push_back(0); })
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
      .add(
          "partition.dst_splits", "sum != n_dst",
          [](GraphArgs& a) { a.partition.dst_splits[0] += 1; }, w1)
      .add(
          "partition.edge_splits", "W + 1 entries",
          [](GraphArgs& a) { a.partition.edge_splits.push_back(0); }, w1)
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
      .add(
          "shard_info.src_nodes", "W + 1 entries",
          [](GraphArgs& a) {
            a.shard_info = BipartiteGraphShardInfo(std::vector<int64_t>(a.world + 1, 0));
          },
          w1)
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
          w1 | kTwoRanks);
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

std::vector<BadInputCase> graph_cases(const GraphFixture& f, int world_size) {
  std::vector<BadInputCase> out;
  for (auto cases_of_one :
       {sort_edge_index_by_dst_cases, is_edge_index_dst_sorted_cases, build_graph_partition_cases,
        build_graph_partition_from_shard_info_cases, materialise_cases,
        ensure_edges_are_dst_sorted_cases, shard_edges_1hop_cases, sort_edges_1hop_chunks_cases,
        drop_unconnected_src_nodes_cases}) {
    for (auto& k : cases_of_one(f)) out.push_back(std::move(k));
  }
  for (auto& k : shard_graph_to_local_cases(f, world_size)) out.push_back(std::move(k));
  return out;
}

}  // namespace graphshard::props
