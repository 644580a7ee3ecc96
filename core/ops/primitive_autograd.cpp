// Autograd kernels of the primitive operators (primitive_ops.cpp), as torch registers those of
// its functional collectives: each forward redispatches below autograd to the operator itself,
// and each backward is the adjoint movement called as an operator too, so that AOTAutograd can
// trace forward and backward with the Meta kernels. The pairs are those of the C++ library's
// autograd functions (core/primitives/autograd.cpp, SPEC §1).
#include <string>

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include "../check.h"
#include "../primitives/arguments.h"
#include "../primitives/collectives.h"
#include "group.h"
#include "primitive_ops.h"

namespace graphshard::ops {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
using Sizes = at::OptionalIntArrayRef;
using Name = c10::string_view;

c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, int64_t, Sizes, Name, bool)>& shard_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("graphshard::shard_tensor", "")
                       .typed<at::Tensor(const at::Tensor&, int64_t, Sizes, Name, bool)>();
  return op;
}
using Cut = at::Tensor(const at::Tensor&, int64_t, Sizes, Name);
c10::TypedOperatorHandle<Cut>& gather_op() {
  static auto op =
      c10::Dispatcher::singleton().findSchemaOrThrow("graphshard::gather_tensor", "").typed<Cut>();
  return op;
}
c10::TypedOperatorHandle<Cut>& reduce_shard_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("graphshard::reduce_shard_tensor", "")
                       .typed<Cut>();
  return op;
}
c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, Name)>& reduce_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("graphshard::reduce_tensor", "")
                       .typed<at::Tensor(const at::Tensor&, Name)>();
  return op;
}
c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, int64_t, Sizes, Name, bool)>& sync_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("graphshard::sync_tensor", "")
                       .typed<at::Tensor(const at::Tensor&, int64_t, Sizes, Name, bool)>();
  return op;
}
using A2A = at::Tensor(const at::Tensor&, int64_t, Sizes, int64_t, Sizes, Name);
c10::TypedOperatorHandle<A2A>& a2a_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("graphshard::all_to_all_transpose", "")
                       .typed<A2A>();
  return op;
}
c10::TypedOperatorHandle<at::Tensor(const at::Tensor&, int64_t, at::IntArrayRef, Name)>&
expand_op() {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("graphshard::_expand_piece", "")
                       .typed<at::Tensor(const at::Tensor&, int64_t, at::IntArrayRef, Name)>();
  return op;
}

// What a backward needs of its forward's arguments, saved as IValues.
struct Saved {
  std::string group;
  int64_t dim = 0;
  std::optional<std::vector<int64_t>> sizes;
};
void save(AutogradContext* ctx, Name group, int64_t dim, Sizes sizes, const char* key = "") {
  ctx->saved_data["group"] = std::string(group);
  ctx->saved_data[std::string("dim") + key] = dim;
  if (sizes) ctx->saved_data[std::string("sizes") + key] = sizes->vec();
}
Saved saved(AutogradContext* ctx, const char* key = "") {
  Saved s;
  s.group = ctx->saved_data.at("group").toStringRef();
  s.dim = ctx->saved_data.at(std::string("dim") + key).toInt();
  auto it = ctx->saved_data.find(std::string("sizes") + key);
  if (it != ctx->saved_data.end()) s.sizes = it->second.toIntVector();
  return s;
}
Sizes ref(const Saved& s) {
  return s.sizes ? Sizes(*s.sizes) : Sizes();
}

// As the C++ autograd functions: these backwards are communications, so a second derivative
// through them would be silently wrong; refuse create_graph=true.
void refuse_double_backward(const char* fn, const std::string& group) {
  if (at::GradMode::is_enabled()) {
    detail::fail(fn, "backward", "create_graph=false (double backward is not supported)",
                 "create_graph=true", group_rank(group));
  }
}

// shard_tensor is CompositeImplicitAutograd, as torch's reshape and contiguous, which may also
// return a view of their input: its forward is the local split, a view where the piece is already
// contiguous in the input's memory format (SPEC §2), which an operator with kernels of its own may
// not return; its backward is the gather (or expand) operator. Nothing communicates in the
// forward, so the arguments are checked here, as the other primitives' kernels check theirs.
struct Shard : torch::autograd::Function<Shard> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t d,
                            const std::vector<int64_t>& sizes, Name group, int rank,
                            bool gather_in_backward) {
    save(ctx, group, d, sizes);
    ctx->saved_data["gather_in_backward"] = gather_in_backward;
    return detail::split_piece(x, d, sizes, rank);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    const Saved s = saved(ctx);
    refuse_double_backward("shard_tensor", s.group);
    at::Tensor gx = ctx->saved_data.at("gather_in_backward").toBool()
                        ? gather_op().call(g[0], s.dim, ref(s), s.group)
                        : expand_op().call(g[0], s.dim, *s.sizes, s.group);
    return {gx, {}, {}, {}, {}, {}};
  }
};

at::Tensor shard_composite(const at::Tensor& x, int64_t dim, Sizes sizes, Name group, bool gib) {
  constexpr const char* fn = "shard_tensor";
  const std::string name(group);
  const int rank = group_rank(name), size = group_size(name);
  if (size == 1) return x;  // bypass (SPEC §0): the input itself, its gradient passed through
  detail::check_defined(fn, "input", x, rank);
  const int64_t d = detail::normalize_dim(fn, "dim", dim, x.dim(), rank);
  const ShardSizes owned = to_sizes(sizes);  // require_sizes returns a reference into it
  const auto& s = detail::require_sizes(fn, "sizes", owned, size, rank);
  if (!x.unsafeGetTensorImpl()->has_symbolic_sizes_strides())
    detail::check_total(fn, "sizes", s, x, d, rank);
  if (!(at::GradMode::is_enabled() && x.requires_grad())) return detail::split_piece(x, d, s, rank);
  return Shard::apply(x, d, s, group, rank, gib);
}

struct Gather : torch::autograd::Function<Gather> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t dim, Sizes sizes,
                            Name group) {
    save(ctx, group, dim, sizes);
    at::AutoDispatchBelowADInplaceOrView below;
    return gather_op().call(x, dim, sizes, group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    const Saved s = saved(ctx);
    refuse_double_backward("gather_tensor", s.group);
    return {shard_op().call(g[0], s.dim, ref(s), s.group, true), {}, {}, {}};
  }
};

struct Reduce : torch::autograd::Function<Reduce> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, Name group) {
    ctx->saved_data["group"] = std::string(group);
    at::AutoDispatchBelowADInplaceOrView below;
    return reduce_op().call(x, group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    refuse_double_backward("reduce_tensor", ctx->saved_data.at("group").toStringRef());
    return {g[0], {}};
  }
};

struct Sync : torch::autograd::Function<Sync> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t dim, Sizes sizes,
                            Name group, bool gather_in_fwd) {
    save(ctx, group, dim, sizes);
    ctx->saved_data["gathers"] = gather_in_fwd && sizes.has_value();
    at::AutoDispatchBelowADInplaceOrView below;
    return sync_op().call(x, dim, sizes, group, gather_in_fwd);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    const Saved s = saved(ctx);
    refuse_double_backward("sync_tensor", s.group);
    // Reduce, then keep piece r if the forward gathered: one reduce-scatter (autograd.cpp).
    at::Tensor gx = ctx->saved_data.at("gathers").toBool()
                        ? reduce_shard_op().call(g[0], s.dim, ref(s), s.group)
                        : reduce_op().call(g[0], s.group);
    return {gx, {}, {}, {}, {}};
  }
};

struct ReduceShard : torch::autograd::Function<ReduceShard> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t dim, Sizes sizes,
                            Name group) {
    save(ctx, group, dim, sizes);
    at::AutoDispatchBelowADInplaceOrView below;
    return reduce_shard_op().call(x, dim, sizes, group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    const Saved s = saved(ctx);
    refuse_double_backward("reduce_shard_tensor", s.group);
    return {gather_op().call(g[0], s.dim, ref(s), s.group), {}, {}, {}};
  }
};

struct AllToAll : torch::autograd::Function<AllToAll> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t ds, Sizes ss,
                            int64_t dc, Sizes cs, Name group) {
    save(ctx, group, ds, ss, "_split");
    save(ctx, group, dc, cs, "_concat");
    at::AutoDispatchBelowADInplaceOrView below;
    return a2a_op().call(x, ds, ss, dc, cs, group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list g) {
    const Saved split = saved(ctx, "_split"), concat = saved(ctx, "_concat");
    refuse_double_backward("all_to_all_transpose", split.group);
    return {a2a_op().call(g[0], concat.dim, ref(concat), split.dim, ref(split), split.group),
            {},
            {},
            {},
            {},
            {}};
  }
};

at::Tensor gather_autograd(const at::Tensor& x, int64_t dim, Sizes sizes, Name group) {
  return Gather::apply(x, dim, sizes, group);
}
at::Tensor reduce_autograd(const at::Tensor& x, Name group) {
  return Reduce::apply(x, group);
}
at::Tensor sync_autograd(const at::Tensor& x, int64_t dim, Sizes sizes, Name group, bool gif) {
  return Sync::apply(x, dim, sizes, group, gif);
}
at::Tensor reduce_shard_autograd(const at::Tensor& x, int64_t dim, Sizes sizes, Name group) {
  return ReduceShard::apply(x, dim, sizes, group);
}
at::Tensor all_to_all_autograd(const at::Tensor& x, int64_t ds, Sizes ss, int64_t dc, Sizes cs,
                               Name group) {
  return AllToAll::apply(x, ds, ss, dc, cs, group);
}

}  // namespace

TORCH_LIBRARY_IMPL(graphshard, CompositeImplicitAutograd, m) {
  m.impl("shard_tensor", shard_composite);
}

TORCH_LIBRARY_IMPL(graphshard, Autograd, m) {
  m.impl("gather_tensor", gather_autograd);
  m.impl("reduce_tensor", reduce_autograd);
  m.impl("sync_tensor", sync_autograd);
  m.impl("reduce_shard_tensor", reduce_shard_autograd);
  m.impl("all_to_all_transpose", all_to_all_autograd);
}

}  // namespace graphshard::ops
