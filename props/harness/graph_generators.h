// Generators of random graphs for the graph-function properties.
//
// A GraphSpec is small (sizes, a shape kind, a seed); make_edge_index turns it into the same
// edge index on every rank and every run. Shapes cover duplicates, self-loops, hubs (a
// destination fed by every source, a source feeding every destination), isolated nodes and
// empty parts (ids drawn from a few nodes only), and empty graphs.
#pragma once

#include <cstdint>
#include <ostream>
#include <vector>

#include <ATen/ATen.h>
#include <rapidcheck.h>

namespace graphshard::props {

enum class GraphShape { kUniform, kDuplicates, kSelfLoops, kHubs, kFewNodes };

struct GraphSpec {
  int64_t n_src = 0, n_dst = 0, num_edges = 0;
  bool plain = false;  // n_src == n_dst (self-loops possible)
  GraphShape shape = GraphShape::kUniform;
  bool int32 = false;  // index dtype int32 instead of int64
  bool sorted = true;  // edges dst-sorted (stable)
  uint64_t seed = 0;
  at::ScalarType index_dtype() const { return int32 ? at::kInt : at::kLong; }
};
std::ostream& operator<<(std::ostream& os, const GraphSpec& g);

// Node counts in [0, max_nodes * size / 100], edge counts in [0, max_edges * size / 100]
// (size = RapidCheck's size, 0..100); zero nodes and zero edges are frequent. `sorted`: always
// sorted (1), never (0), or either (-1).
rc::Gen<GraphSpec> gen_graph_spec(int64_t max_nodes = 2000, int64_t max_edges = 20000,
                                  int sorted = -1);

// The [2, E] edge index of the spec (E = 0 when a side has no nodes).
at::Tensor make_edge_index(const GraphSpec& g);

// n cut into w random (possibly empty, uneven) pieces, the same on every rank for a seed.
std::vector<int64_t> random_split(int64_t n, int w, uint64_t seed);

// Deterministic float data of `rows` rows and the given trailing shape (small integers, so
// sums are exact), from a seed.
at::Tensor make_rows(int64_t rows, const std::vector<int64_t>& trailing, at::ScalarType dtype,
                     uint64_t seed);

}  // namespace graphshard::props
