#include "primitives.h"

#include <stdexcept>

namespace graphshard::reference {
namespace {

int64_t start_of(const std::vector<int64_t>& sizes, int rank) {
  int64_t start = 0;
  for (int q = 0; q < rank; ++q) start += sizes[q];
  return start;
}

}  // namespace

at::Tensor shard(const at::Tensor& full, int64_t dim, const std::vector<int64_t>& sizes, int rank) {
  return full.narrow(dim, start_of(sizes, rank), sizes[rank]).contiguous();
}

at::Tensor gather(const std::vector<at::Tensor>& pieces, int64_t dim) {
  return at::cat(pieces, dim);
}

at::Tensor expand(const at::Tensor& piece, int64_t dim, const std::vector<int64_t>& sizes,
                  int rank) {
  std::vector<at::Tensor> pieces;
  for (size_t q = 0; q < sizes.size(); ++q) {
    if (static_cast<int>(q) == rank) {
      pieces.push_back(piece);
    } else {
      std::vector<int64_t> shape(piece.sizes().begin(), piece.sizes().end());
      shape[dim < 0 ? dim + piece.dim() : dim] = sizes[q];
      pieces.push_back(at::zeros(shape, piece.options()));
    }
  }
  return at::cat(pieces, dim);
}

at::Tensor reduce(const std::vector<at::Tensor>& summands) {
  if (summands.empty()) throw std::invalid_argument("reference::reduce: no summands");
  const at::ScalarType type = summands[0].scalar_type();
  const at::ScalarType wide = at::isFloatingType(type) ? at::kDouble : at::kLong;
  at::Tensor sum = at::zeros(summands[0].sizes(), summands[0].options().dtype(wide));
  for (const at::Tensor& s : summands) sum += s.to(wide);
  return sum.to(type);
}

at::Tensor reduce_shard(const std::vector<at::Tensor>& summands, int64_t dim,
                        const std::vector<int64_t>& sizes, int rank) {
  return shard(reduce(summands), dim, sizes, rank);
}

at::Tensor all_to_all(const std::vector<at::Tensor>& inputs, int64_t dim_split,
                      const std::vector<int64_t>& split_sizes, int64_t dim_concat, int rank) {
  return shard(at::cat(inputs, dim_concat), dim_split, split_sizes, rank);
}

}  // namespace graphshard::reference
