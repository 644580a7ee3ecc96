// The seven tensor primitives as PyTorch operators (namespace graphshard), the way c10d's
// functional collectives are registered: a schema per function taking the group by name, one
// kernel for CPU and CUDA tensors that runs graphshard's C++ primitive below autograd, and a
// Meta kernel that gives the output's shape, dtype and memory format without communicating (what
// torch.compile traces with). The autograd kernels are in primitive_autograd.cpp.
//
// shard_tensor is the exception: a CompositeImplicitAutograd operator (primitive_autograd.cpp),
// since its result is a view of its input where the piece is already contiguous (SPEC §2).
//
// Differences from the C++ functions, all because an operator may not return its input:
// a group of one rank and sync_tensor's non-gathering forward return a copy here (the Python
// package bypasses before calling, so it never pays it).
#include <torch/library.h>

#include <ATen/ATen.h>

#include "../check.h"
#include "../primitives/arguments.h"
#include "../primitives/collectives.h"
#include "graphshard/primitives.h"
#include "graphshard/shapes.h"
#include "group.h"
#include "primitive_ops.h"

namespace graphshard::ops {

ShardSizes to_sizes(at::OptionalIntArrayRef sizes) {
  if (!sizes) return std::nullopt;
  return sizes->vec();
}

namespace {

CommPtr comm_of(c10::string_view group, const at::Tensor& like) {
  return communicator_for(std::string(group), like.defined() ? like.device().type() : at::kCPU);
}

// Runs a primitive below autograd (the autograd kernel made the graph node, if any) with its
// communication errors translated, and never hands back the input itself.
template <typename F>
at::Tensor run(const at::Tensor& input, F&& f) {
  at::AutoGradMode no_grad(false);
  at::Tensor out;
  translate_comm_errors([&] { out = f(); });
  if (out.defined() && out.is_same(input)) out = out.clone(get_memory_format(input));
  return out;
}

at::Tensor gather_cpu(const at::Tensor& x, int64_t dim, at::OptionalIntArrayRef sizes,
                      c10::string_view group) {
  return run(x, [&] { return gather_tensor(x, dim, to_sizes(sizes), comm_of(group, x)); });
}
at::Tensor reduce_cpu(const at::Tensor& x, c10::string_view group) {
  return run(x, [&] { return reduce_tensor(x, comm_of(group, x)); });
}
at::Tensor sync_cpu(const at::Tensor& x, int64_t dim, at::OptionalIntArrayRef sizes,
                    c10::string_view group, bool gather_in_fwd) {
  return run(
      x, [&] { return sync_tensor(x, dim, to_sizes(sizes), comm_of(group, x), gather_in_fwd); });
}
at::Tensor reduce_shard_cpu(const at::Tensor& x, int64_t dim, at::OptionalIntArrayRef sizes,
                            c10::string_view group) {
  return run(x, [&] { return reduce_shard_tensor(x, dim, to_sizes(sizes), comm_of(group, x)); });
}
at::Tensor all_to_all_cpu(const at::Tensor& x, int64_t dim_split,
                          at::OptionalIntArrayRef split_sizes, int64_t dim_concat,
                          at::OptionalIntArrayRef concat_sizes, c10::string_view group) {
  return run(x, [&] {
    return all_to_all_transpose(x, dim_split, to_sizes(split_sizes), dim_concat,
                                to_sizes(concat_sizes), comm_of(group, x));
  });
}
// shard_tensor's backward without gathering: the full shape, piece r = x, the rest zero.
at::Tensor expand_cpu(const at::Tensor& x, int64_t dim, at::IntArrayRef sizes,
                      c10::string_view group) {
  return run(x, [&] {
    return detail::expand_piece(x, c10::maybe_wrap_dim(dim, x.dim()), sizes.vec(),
                                group_rank(std::string(group)));
  });
}

// ---- Meta: shapes only. The argument checks of the real kernel run here too where the shapes
// are concrete (so a bad call fails when traced, with the same message); with symbolic shapes
// the real kernel checks them when it runs.

struct Group {
  int rank, size;
  explicit Group(c10::string_view name)
      : rank(group_rank(std::string(name))), size(group_size(std::string(name))) {}
};

bool concrete(const at::Tensor& x) {
  return !x.unsafeGetTensorImpl()->has_symbolic_sizes_strides();
}

at::Tensor with_dim(const at::Tensor& x, int64_t d, c10::SymInt n) {
  auto shape = x.sym_sizes().vec();
  shape[d] = std::move(n);
  return at::empty_symint(shape, x.options().memory_format(get_memory_format(x)));
}

at::Tensor same_shape(const at::Tensor& x) {
  return at::empty_symint(x.sym_sizes(), x.options().memory_format(get_memory_format(x)));
}

// dim normalised, sizes present with one entry per rank; sum or local piece checked if concrete.
int64_t checked_dim(const char* fn, const char* arg, const at::Tensor& x, int64_t dim,
                    const Group& g) {
  detail::check_defined(fn, "input", x, g.rank);
  return detail::normalize_dim(fn, arg, dim, x.dim(), g.rank);
}

at::Tensor gather_meta(const at::Tensor& x, int64_t dim, at::OptionalIntArrayRef sizes,
                       c10::string_view group) {
  const Group g(group);
  if (g.size == 1) return same_shape(x);
  const int64_t d = checked_dim("gather_tensor", "dim", x, dim, g);
  const ShardSizes owned = to_sizes(sizes);  // require_sizes returns a reference into it
  const auto& s = detail::require_sizes("gather_tensor", "sizes", owned, g.size, g.rank);
  if (concrete(x)) detail::check_local("gather_tensor", "sizes", s, x, d, g.rank);
  return with_dim(x, d, total(s));
}
at::Tensor reduce_meta(const at::Tensor& x, c10::string_view) {
  return same_shape(x);
}
at::Tensor sync_meta(const at::Tensor& x, int64_t dim, at::OptionalIntArrayRef sizes,
                     c10::string_view group, bool gather_in_fwd) {
  const Group g(group);
  if (g.size == 1 || !gather_in_fwd || !sizes) return same_shape(x);
  const int64_t d = checked_dim("sync_tensor", "dim", x, dim, g);
  const ShardSizes owned = to_sizes(sizes);  // require_sizes returns a reference into it
  const auto& s = detail::require_sizes("sync_tensor", "sizes", owned, g.size, g.rank);
  if (concrete(x)) detail::check_local("sync_tensor", "sizes", s, x, d, g.rank);
  return with_dim(x, d, total(s));
}
at::Tensor reduce_shard_meta(const at::Tensor& x, int64_t dim, at::OptionalIntArrayRef sizes,
                             c10::string_view group) {
  const Group g(group);
  if (g.size == 1) return same_shape(x);
  const char* fn = "reduce_shard_tensor";
  const int64_t d = checked_dim(fn, "dim", x, dim, g);
  const ShardSizes owned = to_sizes(sizes);  // require_sizes returns a reference into it
  const auto& s = detail::require_sizes(fn, "sizes", owned, g.size, g.rank);
  if (concrete(x)) detail::check_total(fn, "sizes", s, x, d, g.rank);
  return with_dim(x, d, s[g.rank]);
}
at::Tensor all_to_all_meta(const at::Tensor& x, int64_t dim_split,
                           at::OptionalIntArrayRef split_sizes, int64_t dim_concat,
                           at::OptionalIntArrayRef concat_sizes, c10::string_view group) {
  const Group g(group);
  if (g.size == 1) return same_shape(x);
  const char* fn = "all_to_all_transpose";
  const int64_t ds = checked_dim(fn, "dim_split", x, dim_split, g);
  const int64_t dc = detail::normalize_dim(fn, "dim_concat", dim_concat, x.dim(), g.rank);
  detail::check(ds != dc, fn, "dim_concat", "a dim other than dim_split", dim_concat, g.rank);
  const ShardSizes split = to_sizes(split_sizes), concat = to_sizes(concat_sizes);  // owned
  const auto& ss = detail::require_sizes(fn, "split_sizes", split, g.size, g.rank);
  const auto& cs = detail::require_sizes(fn, "concat_sizes", concat, g.size, g.rank);
  if (concrete(x)) {
    detail::check_total(fn, "split_sizes", ss, x, ds, g.rank);
    detail::check_local(fn, "concat_sizes", cs, x, dc, g.rank);
  }
  auto shape = x.sym_sizes().vec();
  shape[ds] = ss[g.rank];
  shape[dc] = total(cs);
  return at::empty_symint(shape, x.options().memory_format(get_memory_format(x)));
}
at::Tensor expand_meta(const at::Tensor& x, int64_t dim, at::IntArrayRef sizes, c10::string_view) {
  return with_dim(x, c10::maybe_wrap_dim(dim, x.dim()), total(sizes.vec()));
}

}  // namespace

TORCH_LIBRARY(graphshard, m) {
  // Composite (primitive_autograd.cpp): its result may be a view of its input (SPEC §2).
  m.def(
      "shard_tensor(Tensor(a) input, int dim, int[]? sizes, str group, "
      "bool gather_in_backward=True) -> Tensor(a)");
  m.def("gather_tensor(Tensor input, int dim, int[]? sizes, str group) -> Tensor");
  m.def("reduce_tensor(Tensor input, str group) -> Tensor");
  m.def(
      "sync_tensor(Tensor input, int dim, int[]? sizes, str group, bool gather_in_fwd=True) "
      "-> Tensor");
  m.def("reduce_shard_tensor(Tensor input, int dim, int[]? sizes, str group) -> Tensor");
  m.def(
      "all_to_all_transpose(Tensor input, int dim_split, int[]? split_sizes, int dim_concat, "
      "int[]? concat_sizes, str group) -> Tensor");
  m.def("_expand_piece(Tensor input, int dim, int[] sizes, str group) -> Tensor");
}

#define GRAPHSHARD_PRIMITIVE_KERNELS(suffix)            \
  m.impl("gather_tensor", gather_##suffix);             \
  m.impl("reduce_tensor", reduce_##suffix);             \
  m.impl("sync_tensor", sync_##suffix);                 \
  m.impl("reduce_shard_tensor", reduce_shard_##suffix); \
  m.impl("all_to_all_transpose", all_to_all_##suffix);  \
  m.impl("_expand_piece", expand_##suffix)

// One kernel for both devices: graphshard's primitives choose the device path themselves.
TORCH_LIBRARY_IMPL(graphshard, CPU, m) {
  GRAPHSHARD_PRIMITIVE_KERNELS(cpu);
}
TORCH_LIBRARY_IMPL(graphshard, CUDA, m) {
  GRAPHSHARD_PRIMITIVE_KERNELS(cpu);
}
TORCH_LIBRARY_IMPL(graphshard, Meta, m) {
  GRAPHSHARD_PRIMITIVE_KERNELS(meta);
}

}  // namespace graphshard::ops
