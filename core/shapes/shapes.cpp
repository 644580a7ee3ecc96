#include "graphshard/shapes.h"

#include <ostream>
#include <sstream>

#include <ATen/ATen.h>

#include "../check.h"
#include "graphshard/comm.h"

namespace graphshard {

using detail::check;
using detail::fail;
using detail::to_str;

std::vector<int64_t> balanced_sizes(int64_t n, int64_t parts) {
  if (n < 0) fail("balanced_sizes", "n", "n >= 0", to_str(n), 0);
  if (parts < 1) fail("balanced_sizes", "parts", "parts >= 1", to_str(parts), 0);
  std::vector<int64_t> sizes(parts, n / parts);
  for (int64_t i = 0; i < n % parts; ++i) ++sizes[i];
  return sizes;
}

std::pair<int64_t, int64_t> partition_range(const std::vector<int64_t>& sizes, int64_t i,
                                            int64_t offset) {
  const auto n = static_cast<int64_t>(sizes.size());
  if (i < 0 || i >= n) {
    fail("partition_range", "i", "an index in [0, " + std::to_string(n) + ")", to_str(i), 0);
  }
  int64_t start = offset;
  for (int64_t j = 0; j < i; ++j) start += sizes[j];
  return {start, start + sizes[i]};
}

int64_t total(const std::vector<int64_t>& sizes) {
  int64_t s = 0;
  for (int64_t v : sizes) s += v;
  return s;
}

std::string to_string(const ShardSizes& sizes) { return sizes ? detail::str(*sizes) : "None"; }

std::string GraphShardInfo::to_string() const {
  return "GraphShardInfo(nodes=" + graphshard::to_string(nodes_) +
         ", edges=" + graphshard::to_string(edges_) + ")";
}

std::string BipartiteGraphShardInfo::to_string() const {
  return "BipartiteGraphShardInfo(src_nodes=" + graphshard::to_string(src_nodes_) +
         ", dst_nodes=" + graphshard::to_string(dst_nodes_) +
         ", edges=" + graphshard::to_string(edges_) + ")";
}

std::ostream& operator<<(std::ostream& os, const GraphShardInfo& info) {
  return os << info.to_string();
}
std::ostream& operator<<(std::ostream& os, const BipartiteGraphShardInfo& info) {
  return os << info.to_string();
}

std::vector<int64_t> get_shard_sizes(const at::Tensor& tensor, int64_t dim, const CommPtr& group) {
  const int rank = group ? group->rank() : 0;
  const int world = group ? group->size() : 1;
  const int64_t d = detail::normalize_dim("get_shard_sizes", "dim", dim, tensor.dim(), rank);
  return balanced_sizes(tensor.size(d), world);
}

std::vector<std::vector<int64_t>> expand_shard_sizes_to_shapes(const at::Tensor& tensor,
                                                               int64_t dim,
                                                               const std::vector<int64_t>& sizes) {
  const int64_t d =
      detail::normalize_dim("expand_shard_sizes_to_shapes", "dim", dim, tensor.dim(), 0);
  std::vector<std::vector<int64_t>> shapes;
  shapes.reserve(sizes.size());
  for (int64_t s : sizes) {
    if (s < 0) fail("expand_shard_sizes_to_shapes", "sizes", "non-negative entries",
                    detail::str(sizes), 0);
    auto shape = tensor.sizes().vec();
    shape[d] = s;
    shapes.push_back(std::move(shape));
  }
  return shapes;
}

bool model_is_distributed(const CommPtr& group) { return group && group->size() > 1; }

at::MemoryFormat get_memory_format(const at::Tensor& tensor) {
  if (tensor.dim() == 4 && tensor.is_contiguous(at::MemoryFormat::ChannelsLast)) {
    return at::MemoryFormat::ChannelsLast;
  }
  return at::MemoryFormat::Contiguous;
}

}  // namespace graphshard
