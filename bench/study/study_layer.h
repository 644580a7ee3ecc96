// The message-passing layer the studies run: per edge a linear map of the source features plus
// one of the edge attributes, summed per destination, plus a linear map of the destination
// features. Local ids only; no communication (sharding happens around it).
#pragma once

#include <ATen/ATen.h>

namespace graphshard::study {

struct LayerWeights {
  at::Tensor w_src, w_edge, w_dst;  // [C, C], [Fe, C], [C, C]
};

inline at::Tensor message_passing(const at::Tensor& x_src, const at::Tensor& x_dst,
                                  const at::Tensor& edge_attr, const at::Tensor& edge_index,
                                  const LayerWeights& w) {
  const at::Tensor ei = edge_index.to(at::kLong);
  const at::Tensor msg = x_src.index_select(0, ei[0]).matmul(w.w_src) + edge_attr.matmul(w.w_edge);
  return at::zeros({x_dst.size(0), w.w_dst.size(1)}, msg.options()).index_add(0, ei[1], msg) +
         x_dst.matmul(w.w_dst);
}

}  // namespace graphshard::study
