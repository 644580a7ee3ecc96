// Uses the installed headers and library: shapes, a graph function and a primitive in bypass.
#include <cstdio>

#include <ATen/ATen.h>

#include "graphshard/graph.h"
#include "graphshard/primitives.h"
#include "graphshard/shapes.h"

int main() {
  const auto sizes = graphshard::balanced_sizes(10, 4);
  const at::Tensor ei = at::tensor({0, 1, 2, 3, 2, 0, 1, 0}, at::kLong).view({2, 4});
  const auto sorted = graphshard::sort_edge_index_by_dst(ei);
  const at::Tensor x = at::arange(6.0);
  const at::Tensor y = graphshard::gather_tensor(x, 0, std::nullopt, nullptr);  // bypass
  const bool ok = sizes == std::vector<int64_t>{3, 3, 2, 2} &&
                  graphshard::is_edge_index_dst_sorted(sorted.edge_index) && y.is_same(x);
  std::printf("consumer: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
