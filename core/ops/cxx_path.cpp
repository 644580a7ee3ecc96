// A test hook (graphshard::_cxx_primitive): one primitive forward and backward through the C++
// library's own autograd functions (core/primitives/autograd.cpp), not through the operators'
// autograd kernels, so the Python tests can check that both paths give the same bits.
#include <torch/csrc/autograd/autograd.h>
#include <torch/library.h>

#include <ATen/ATen.h>

#include "graphshard/primitives.h"
#include "group.h"
#include "primitive_ops.h"

namespace graphshard::ops {
namespace {

// fn: shard_tensor | shard_tensor_expand | gather_tensor | reduce_tensor | sync_tensor |
// sync_tensor_no_gather | reduce_shard_tensor | all_to_all_transpose. Returns (y, dL/dx) for
// L = sum(y * grad_y); dims and sizes as the function takes them (dim2/sizes2: the concat side
// of all_to_all_transpose).
std::tuple<at::Tensor, at::Tensor> cxx_primitive(c10::string_view fn, const at::Tensor& x,
                                                 const at::Tensor& grad_y, int64_t dim,
                                                 at::OptionalIntArrayRef sizes, int64_t dim2,
                                                 at::OptionalIntArrayRef sizes2,
                                                 c10::string_view group) {
  const CommPtr comm = communicator_for(std::string(group), x.device().type());
  const std::string f(fn);
  at::Tensor xv = x.detach().clone().requires_grad_(x.is_floating_point());
  at::Tensor y;
  translate_comm_errors([&] {
    at::AutoGradMode grad(true);
    const auto s = to_sizes(sizes), s2 = to_sizes(sizes2);
    if (f == "shard_tensor")
      y = shard_tensor(xv, dim, s, comm);
    else if (f == "shard_tensor_expand")
      y = shard_tensor(xv, dim, s, comm, false);
    else if (f == "gather_tensor")
      y = gather_tensor(xv, dim, s, comm);
    else if (f == "reduce_tensor")
      y = reduce_tensor(xv, comm);
    else if (f == "sync_tensor")
      y = sync_tensor(xv, dim, s, comm);
    else if (f == "sync_tensor_no_gather")
      y = sync_tensor(xv, dim, s, comm, false);
    else if (f == "reduce_shard_tensor")
      y = reduce_shard_tensor(xv, dim, s, comm);
    else if (f == "all_to_all_transpose")
      y = all_to_all_transpose(xv, dim, s, dim2, s2, comm);
    else
      TORCH_CHECK_VALUE(false, "graphshard::_cxx_primitive: fn: unknown function '", f, "'");
  });
  if (!xv.requires_grad()) return {y.detach(), at::Tensor()};
  at::Tensor gx;
  translate_comm_errors([&] { gx = torch::autograd::grad({y}, {xv}, {grad_y})[0]; });
  return {y.detach(), gx};
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(graphshard, m) {
  m.def(
      "_cxx_primitive(str fn, Tensor x, Tensor grad_y, int dim, int[]? sizes, int dim2, "
      "int[]? sizes2, str group) -> (Tensor, Tensor)");
}
TORCH_LIBRARY_IMPL(graphshard, CompositeImplicitAutograd, m) {
  m.impl("_cxx_primitive", cxx_primitive);
}

}  // namespace graphshard::ops
