// What the bad-input cases of the graph functions share (badinput_graph_cases.cpp,
// badinput_graph_shard_cases.cpp): the arguments a case spoils, the list that builds the cases of
// one function, and the spoils used by several functions. Internal to graphshard_badinput.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

#include "badinput_catalogue.h"
#include "graphshard/graph.h"
#include "graphshard/halo.h"
#include "graphshard/partitioners.h"

namespace graphshard::props::graph_badinput {

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
  PartitionOptions partition_options;  // partition_graph (default: contiguous)
  HaloInfo halo;                       // halo_exchange, verify_halo_info (default: none)
};

using Spoil = std::function<void(GraphArgs&)>;

// Floating rows that require grad (the differentiable path of the functions).
at::Tensor rows(int64_t n, int64_t cols = 2);

GraphArgs valid_args(const GraphFixture& f, int world, int rank);

// A copy of ei with entry (row, col) set to value.
at::Tensor with_entry(const at::Tensor& ei, int64_t row, int64_t col, int64_t value);

// Reversed edges are unsorted when the first and last destinations differ.
bool can_unsort(const GraphFixture& f);
void unsort(GraphArgs& a);
void unsort_under_sorted_flag(GraphArgs& a);

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

  CaseList& add(std::string arg, std::string what, Spoil spoil, unsigned options = 0);
  // A list of one entry per rank (or part) at each wrong length (kWrongLengths), one case each,
  // named what(l): resize(a, l) passes the correct list at length l (with_length) and the rest
  // as that correct list requires, so only the length is wrong.
  using Resize = std::function<void(GraphArgs&, WrongLength)>;
  CaseList& add_lengths_named(const std::string& arg,
                              const std::function<std::string(WrongLength)>& what,
                              const Resize& resize, unsigned options = 0) {
    for (WrongLength l : kWrongLengths) {
      add(
          arg, what(l), [resize, l](GraphArgs& a) { resize(a, l); }, options);
    }
    return *this;
  }
  // The same, named "W + 1 entries" etc. (describe).
  CaseList& add_lengths(const std::string& arg, const Resize& resize, unsigned options = 0) {
    return add_lengths_named(arg, describe, resize, options);
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
void float_edge_index(GraphArgs& a);
void three_row_edge_index(GraphArgs& a);
void source_at_n_src(GraphArgs& a);
void destination_at_n_dst(GraphArgs& a);  // the last edge: still dst-sorted
void edge_attr_one_row_too_many(GraphArgs& a);

// The cases of the functions that take shard info or shard across the group
// (badinput_graph_shard_cases.cpp), in the order graph_cases lists them.
std::vector<BadInputCase> build_graph_partition_from_shard_info_cases(const GraphFixture& f);
std::vector<BadInputCase> shard_edges_1hop_cases(const GraphFixture& f);
std::vector<BadInputCase> shard_graph_to_local_cases(const GraphFixture& f, int world_size);
// The halo metadata's and the partitioner's (badinput_partition_cases.cpp).
// The fixture as a plain graph over max(n_src, n_dst) nodes, cut over the group.
void as_plain_graph(GraphArgs& a);
std::vector<BadInputCase> build_halo_info_cases(const GraphFixture& f);
std::vector<BadInputCase> partition_graph_cases(const GraphFixture& f);
// The halo exchange's (badinput_halo_cases.cpp).
std::vector<BadInputCase> halo_exchange_cases(const GraphFixture& f);
std::vector<BadInputCase> verify_halo_info_cases(const GraphFixture& f);

}  // namespace graphshard::props::graph_badinput
