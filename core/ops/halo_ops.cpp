// The halo exchange (graphshard/halo.h, SPEC §3b) as PyTorch operators.
//
// halo_exchange is registered as the primitives are (primitive_ops.cpp): one kernel for CPU and
// CUDA running graphshard's movement below autograd, a Meta kernel (its output has
// num_local + sum(recv_counts) rows, known from the arguments, so torch.compile traces it), and
// an Autograd kernel whose backward is the operator _halo_exchange_backward. HaloInfo travels as
// its fields (a schema has no structs). build_halo_info and verify_halo_info are eager
// CompositeImplicitAutograd kernels around the C++ functions (their results depend on the data).
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>

#include "../check.h"
#include "graphshard/halo.h"
#include "group.h"
#include "primitive_ops.h"

namespace graphshard::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Name = c10::string_view;

CommPtr comm_of(const std::optional<Name>& group, const at::Tensor& like) {
  if (!group) return nullptr;
  return communicator_for(std::string(*group), like.device().type());
}

GraphPartition partition_of(at::IntArrayRef num_nodes, int64_t num_edges, int64_t num_parts,
                            at::IntArrayRef dst_splits, at::IntArrayRef edge_splits) {
  TORCH_CHECK_VALUE(num_nodes.size() == 2,
                    "graphshard::GraphPartition: num_nodes: expected (n_src, n_dst), got ",
                    num_nodes.size(), " entries");
  GraphPartition p;
  p.num_nodes = {num_nodes[0], num_nodes[1]};
  p.num_edges = num_edges;
  p.num_parts = num_parts;
  p.dst_splits = dst_splits.vec();
  p.edge_splits = edge_splits.vec();
  return p;
}

// The fields halo_exchange needs of a HaloInfo to move rows, checked as the C++ function
// checks them (only num_halo_nodes is implied: the sum of recv_counts).
HaloInfo info_of(const at::Tensor& x, const std::vector<at::Tensor>& send_indices,
                 at::IntArrayRef recv_counts, int64_t num_local, Name group) {
  HaloInfo h;
  h.num_local_nodes = num_local;
  h.send_indices = send_indices;
  h.recv_counts = recv_counts.vec();
  h.num_halo_nodes = 0;
  for (int64_t c : h.recv_counts) h.num_halo_nodes += c;
  detail::check_halo_arguments("halo_exchange", x, h, group_size(std::string(group)),
                               group_rank(std::string(group)));
  return h;
}

at::Tensor halo_cpu(const at::Tensor& x, int64_t num_local, at::TensorList send_indices,
                    at::IntArrayRef recv_counts, Name group) {
  const HaloInfo h = info_of(x, send_indices.vec(), recv_counts, num_local, group);
  at::AutoGradMode no_grad(false);
  at::Tensor out;
  translate_comm_errors([&] {
    out = detail::halo_forward(x, h.send_indices, h.recv_counts,
                               *communicator_for(std::string(group), x.device().type()));
  });
  return out;
}

at::Tensor halo_backward_cpu(const at::Tensor& grad, int64_t num_local,
                             at::TensorList send_indices, at::IntArrayRef recv_counts, Name group) {
  at::AutoGradMode no_grad(false);
  at::Tensor out;
  translate_comm_errors([&] {
    out = detail::halo_backward(grad, num_local, send_indices.vec(), recv_counts.vec(),
                                *communicator_for(std::string(group), grad.device().type()));
  });
  return out;
}

at::Tensor rows_like(const at::Tensor& x, c10::SymInt rows) {
  auto shape = x.sym_sizes().vec();
  shape[0] = std::move(rows);
  return at::empty_symint(shape, x.options().memory_format(at::MemoryFormat::Contiguous));
}

at::Tensor halo_meta(const at::Tensor& x, int64_t num_local, at::TensorList,
                     at::IntArrayRef recv_counts, Name group) {
  const int rank = group_rank(std::string(group));
  detail::check(x.dim() >= 1, "halo_exchange", "input", "a tensor of at least one dim",
                x.sizes(), rank);
  if (!x.unsafeGetTensorImpl()->has_symbolic_sizes_strides()) {
    detail::check(x.size(0) == num_local, "halo_exchange", "input",
                  std::to_string(num_local) + " rows (halo_info.num_local_nodes)", x.size(0), rank);
  }
  int64_t halo = 0;
  for (int64_t c : recv_counts) halo += c;
  return rows_like(x, c10::SymInt(num_local + halo));
}

at::Tensor halo_backward_meta(const at::Tensor& grad, int64_t num_local, at::TensorList,
                              at::IntArrayRef, Name) {
  return rows_like(grad, c10::SymInt(num_local));
}

using Fwd = at::Tensor(const at::Tensor&, int64_t, at::TensorList, at::IntArrayRef, Name);
c10::TypedOperatorHandle<Fwd>& halo_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("graphshard::halo_exchange", "")
                       .typed<Fwd>();
  return op;
}
using Back = at::Tensor(const at::Tensor&, int64_t, at::TensorList, at::IntArrayRef, Name);
c10::TypedOperatorHandle<Back>& halo_backward_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("graphshard::_halo_exchange_backward", "")
                       .typed<Back>();
  return op;
}

struct Halo : torch::autograd::Function<Halo> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t num_local,
                            const std::vector<at::Tensor>& send_indices,
                            at::IntArrayRef recv_counts, Name group) {
    ctx->saved_data["group"] = std::string(group);
    ctx->saved_data["num_local"] = num_local;
    ctx->saved_data["send_indices"] = send_indices;
    ctx->saved_data["recv_counts"] = recv_counts.vec();
    at::AutoDispatchBelowADInplaceOrView below;
    return halo_op().call(x, num_local, send_indices, recv_counts, group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    const std::string group = ctx->saved_data.at("group").toStringRef();
    if (at::GradMode::is_enabled()) {
      detail::fail("halo_exchange", "backward", "create_graph=false (double backward is not "
                   "supported)", "create_graph=true", group_rank(group));
    }
    const auto send = ctx->saved_data.at("send_indices").toTensorVector();
    const auto counts = ctx->saved_data.at("recv_counts").toIntVector();
    return {halo_backward_op().call(g[0], ctx->saved_data.at("num_local").toInt(), send, counts,
                                    group),
            {},
            {},
            {},
            {}};
  }
};

at::Tensor halo_autograd(const at::Tensor& x, int64_t num_local, at::TensorList send_indices,
                         at::IntArrayRef recv_counts, Name group) {
  return Halo::apply(x, num_local, send_indices.vec(), recv_counts, group);
}

// recv_global_ids: an empty list when built without debug (with debug it has W >= 1 entries).
std::tuple<int64_t, int64_t, std::vector<at::Tensor>, std::vector<int64_t>,
           std::vector<at::Tensor>, at::Tensor>
build_info(at::IntArrayRef num_nodes, int64_t num_edges, int64_t num_parts,
           at::IntArrayRef dst_splits, at::IntArrayRef edge_splits, const at::Tensor& edge_index,
           std::optional<Name> group, at::OptionalIntArrayRef edge_shard_sizes, bool debug) {
  const GraphPartition p = partition_of(num_nodes, num_edges, num_parts, dst_splits, edge_splits);
  HaloInfo h;
  translate_comm_errors([&] {
    h = build_halo_info(p, edge_index, comm_of(group, edge_index), to_sizes(edge_shard_sizes),
                        debug);
  });
  return {h.num_local_nodes,
          h.num_halo_nodes,
          h.send_indices,
          h.recv_counts,
          h.recv_global_ids.value_or(std::vector<at::Tensor>{}),
          h.edge_index_local};
}

void verify_info(int64_t num_local, at::TensorList send_indices, at::IntArrayRef recv_counts,
                 at::TensorList recv_global_ids, const at::Tensor& edge_index_local,
                 at::IntArrayRef num_nodes, int64_t num_edges, int64_t num_parts,
                 at::IntArrayRef dst_splits, at::IntArrayRef edge_splits,
                 std::optional<Name> group) {
  HaloInfo h;
  h.num_local_nodes = num_local;
  h.send_indices = send_indices.vec();
  h.recv_counts = recv_counts.vec();
  for (int64_t c : h.recv_counts) h.num_halo_nodes += c;
  if (!recv_global_ids.empty()) h.recv_global_ids = recv_global_ids.vec();
  h.edge_index_local = edge_index_local;
  const GraphPartition p = partition_of(num_nodes, num_edges, num_parts, dst_splits, edge_splits);
  translate_comm_errors([&] { verify_halo_info(h, p, comm_of(group, edge_index_local)); });
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(graphshard, m) {
  m.def(
      "halo_exchange(Tensor input, int num_local, Tensor[] send_indices, int[] recv_counts, "
      "str group) -> Tensor");
  m.def(
      "_halo_exchange_backward(Tensor grad, int num_local, Tensor[] send_indices, "
      "int[] recv_counts, str group) -> Tensor");
  m.def(
      "build_halo_info(int[] num_nodes, int num_edges, int num_parts, int[] dst_splits, "
      "int[] edge_splits, Tensor edge_index, str? group, int[]? edge_shard_sizes=None, "
      "bool debug=False) -> (int, int, Tensor[], int[], Tensor[], Tensor)");
  m.def(
      "verify_halo_info(int num_local_nodes, Tensor[] send_indices, int[] recv_counts, "
      "Tensor[] recv_global_ids, Tensor edge_index_local, int[] num_nodes, int num_edges, "
      "int num_parts, int[] dst_splits, int[] edge_splits, str? group) -> ()");
}

TORCH_LIBRARY_IMPL(graphshard, CPU, m) {
  m.impl("halo_exchange", halo_cpu);
  m.impl("_halo_exchange_backward", halo_backward_cpu);
}
TORCH_LIBRARY_IMPL(graphshard, CUDA, m) {
  m.impl("halo_exchange", halo_cpu);
  m.impl("_halo_exchange_backward", halo_backward_cpu);
}
TORCH_LIBRARY_IMPL(graphshard, Meta, m) {
  m.impl("halo_exchange", halo_meta);
  m.impl("_halo_exchange_backward", halo_backward_meta);
}
TORCH_LIBRARY_IMPL(graphshard, Autograd, m) {
  m.impl("halo_exchange", halo_autograd);
}
TORCH_LIBRARY_IMPL(graphshard, CompositeImplicitAutograd, m) {
  m.impl("build_halo_info", build_info);
  m.impl("verify_halo_info", verify_info);
}

}  // namespace graphshard::ops
