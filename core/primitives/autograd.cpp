// The seven public primitives: argument checks, bypass, and the autograd functions that pair
// each forward movement with its adjoint (SPEC §1, §2).
//
// This is the only translation unit that includes custom_function.h (slow to compile).
#include <string>
#include <utility>

#include <ATen/ATen.h>
#include <torch/csrc/autograd/custom_function.h>

#include "../check.h"
#include "arguments.h"
#include "collectives.h"
#include "graphshard/halo.h"
#include "graphshard/primitives.h"

namespace graphshard {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The group rides in ctx->saved_data as a capsule (saved_data holds IValues only).
struct GroupHolder : torch::CustomClassHolder {
  explicit GroupHolder(CommPtr g) : group(std::move(g)) {}
  CommPtr group;
};

void save_group(AutogradContext* ctx, const CommPtr& group) {
  ctx->saved_data["group"] = c10::IValue::make_capsule(c10::make_intrusive<GroupHolder>(group));
}

CommPtr saved_group(AutogradContext* ctx) {
  return c10::static_intrusive_pointer_cast<GroupHolder>(ctx->saved_data.at("group").toCapsule())
      ->group;
}

std::vector<int64_t> saved_sizes(AutogradContext* ctx, const char* key) {
  return ctx->saved_data.at(key).toIntVector();
}

// The engine runs a backward with grad mode on only when the caller asked for create_graph.
// These backwards are communications, not differentiable expressions of their inputs, so a
// second derivative through them would be silently wrong: refuse it.
Communicator& backward_group(AutogradContext* ctx, const char* fn, CommPtr& keep) {
  keep = saved_group(ctx);
  if (at::GradMode::is_enabled()) {
    detail::fail(fn, "backward", "create_graph=false (double backward is not supported)",
                 "create_graph=true", keep->rank());
  }
  return *keep;
}

// Integer tensors and tensors that do not require grad skip the autograd node entirely.
bool needs_autograd(const at::Tensor& x) {
  return at::GradMode::is_enabled() && x.requires_grad();
}

// R -> S(d); backward S -> R (gather) or expand.
struct ShardFunction : torch::autograd::Function<ShardFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t d,
                            const std::vector<int64_t>& sizes, const CommPtr& group,
                            bool gather_in_backward) {
    save_group(ctx, group);
    ctx->saved_data["dim"] = d;
    ctx->saved_data["sizes"] = sizes;
    ctx->saved_data["gather_in_backward"] = gather_in_backward;
    return detail::split_piece(x, d, sizes, group->rank());
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    CommPtr keep;
    Communicator& comm = backward_group(ctx, "shard_tensor", keep);
    const int64_t d = ctx->saved_data.at("dim").toInt();
    const auto sizes = saved_sizes(ctx, "sizes");
    at::Tensor gx = ctx->saved_data.at("gather_in_backward").toBool()
                        ? detail::gather_pieces(grads[0], d, sizes, comm)
                        : detail::expand_piece(grads[0], d, sizes, comm.rank());
    return {gx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// S(d) -> R; backward keeps piece r.
struct GatherFunction : torch::autograd::Function<GatherFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t d,
                            const std::vector<int64_t>& sizes, const CommPtr& group) {
    save_group(ctx, group);
    ctx->saved_data["dim"] = d;
    ctx->saved_data["sizes"] = sizes;
    return detail::gather_pieces(x, d, sizes, *group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    CommPtr keep;
    Communicator& comm = backward_group(ctx, "gather_tensor", keep);
    at::Tensor gx = detail::split_piece(grads[0], ctx->saved_data.at("dim").toInt(),
                                        saved_sizes(ctx, "sizes"), comm.rank());
    return {gx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// P -> R; backward identity.
struct ReduceFunction : torch::autograd::Function<ReduceFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const CommPtr& group) {
    save_group(ctx, group);
    return detail::reduce_sum(x, *group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    CommPtr keep;
    backward_group(ctx, "reduce_tensor", keep);
    return {grads[0], at::Tensor()};
  }
};

// S(d) -> R (gathers) or R -> R; the gradient arrives as P: all-reduce it, then keep piece r if
// the forward gathered (together one reduce-scatter).
struct SyncFunction : torch::autograd::Function<SyncFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t d,
                            const std::vector<int64_t>& sizes, const CommPtr& group, bool gathers) {
    save_group(ctx, group);
    ctx->saved_data["dim"] = d;
    ctx->saved_data["sizes"] = sizes;
    ctx->saved_data["gathers"] = gathers;
    return gathers ? detail::gather_pieces(x, d, sizes, *group) : x;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    CommPtr keep;
    Communicator& comm = backward_group(ctx, "sync_tensor", keep);
    // Reduce then keep piece r is one reduce-scatter: the same sums (each element added in rank
    // order by its owner), half the bytes of an all-reduce, and no full-size result to cut.
    at::Tensor gx = ctx->saved_data.at("gathers").toBool()
                        ? detail::reduce_scatter_pieces(grads[0], ctx->saved_data.at("dim").toInt(),
                                                        saved_sizes(ctx, "sizes"), comm)
                        : detail::reduce_sum(grads[0], comm);
    return {gx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// P -> S(d) as one reduce-scatter; backward all-gather.
struct ReduceShardFunction : torch::autograd::Function<ReduceShardFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t d,
                            const std::vector<int64_t>& sizes, const CommPtr& group) {
    save_group(ctx, group);
    ctx->saved_data["dim"] = d;
    ctx->saved_data["sizes"] = sizes;
    return detail::reduce_scatter_pieces(x, d, sizes, *group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    CommPtr keep;
    Communicator& comm = backward_group(ctx, "reduce_shard_tensor", keep);
    at::Tensor gx = detail::gather_pieces(grads[0], ctx->saved_data.at("dim").toInt(),
                                          saved_sizes(ctx, "sizes"), comm);
    return {gx, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// S(dc) -> S(ds); backward the inverse transpose S(ds) -> S(dc).
struct AllToAllFunction : torch::autograd::Function<AllToAllFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, int64_t ds,
                            const std::vector<int64_t>& ssizes, int64_t dc,
                            const std::vector<int64_t>& csizes, const CommPtr& group) {
    save_group(ctx, group);
    ctx->saved_data["dim_split"] = ds;
    ctx->saved_data["split_sizes"] = ssizes;
    ctx->saved_data["dim_concat"] = dc;
    ctx->saved_data["concat_sizes"] = csizes;
    return detail::all_to_all_pieces(x, ds, ssizes, dc, csizes, *group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    CommPtr keep;
    Communicator& comm = backward_group(ctx, "all_to_all_transpose", keep);
    at::Tensor gx = detail::all_to_all_pieces(
        grads[0], ctx->saved_data.at("dim_concat").toInt(), saved_sizes(ctx, "concat_sizes"),
        ctx->saved_data.at("dim_split").toInt(), saved_sizes(ctx, "split_sizes"), comm);
    return {gx, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

// S(0) -> S(0) with the halo rows appended; backward adds the halo rows' gradient at their
// owners (graphshard/halo.h).
struct HaloFunction : torch::autograd::Function<HaloFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const HaloInfo& info,
                            const CommPtr& group) {
    save_group(ctx, group);
    ctx->saved_data["num_local"] = info.num_local_nodes;
    ctx->saved_data["send_indices"] = info.send_indices;
    ctx->saved_data["recv_counts"] = info.recv_counts;
    return detail::halo_forward(x, info.send_indices, info.recv_counts, *group);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    CommPtr keep;
    Communicator& comm = backward_group(ctx, "halo_exchange", keep);
    const auto send = ctx->saved_data.at("send_indices").toTensorVector();
    at::Tensor gx = detail::halo_backward(grads[0], ctx->saved_data.at("num_local").toInt(), send,
                                          saved_sizes(ctx, "recv_counts"), comm);
    return {gx, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor halo_exchange(const at::Tensor& x, const HaloInfo& halo_info, const CommPtr& group) {
  if (!model_is_distributed(group)) return x;
  detail::check_halo_arguments("halo_exchange", x, halo_info, group->size(), group->rank());
  if (!needs_autograd(x))
    return detail::halo_forward(x, halo_info.send_indices, halo_info.recv_counts, *group);
  return HaloFunction::apply(x, halo_info, group);
}

at::Tensor shard_tensor(const at::Tensor& input, int64_t dim, const ShardSizes& sizes,
                        const CommPtr& group, bool gather_in_backward) {
  constexpr const char* fn = "shard_tensor";
  if (!model_is_distributed(group)) return input;
  const int r = group->rank();
  detail::check_defined(fn, "input", input, r);
  const int64_t d = detail::normalize_dim(fn, "dim", dim, input.dim(), r);
  const auto& s = detail::require_sizes(fn, "sizes", sizes, group->size(), r);
  detail::check_total(fn, "sizes", s, input, d, r);
  if (!needs_autograd(input)) return detail::split_piece(input, d, s, r);
  return ShardFunction::apply(input, d, s, group, gather_in_backward);
}

at::Tensor gather_tensor(const at::Tensor& input, int64_t dim, const ShardSizes& sizes,
                         const CommPtr& group) {
  constexpr const char* fn = "gather_tensor";
  if (!model_is_distributed(group)) return input;
  const int r = group->rank();
  detail::check_defined(fn, "input", input, r);
  const int64_t d = detail::normalize_dim(fn, "dim", dim, input.dim(), r);
  const auto& s = detail::require_sizes(fn, "sizes", sizes, group->size(), r);
  detail::check_local(fn, "sizes", s, input, d, r);
  if (!needs_autograd(input)) return detail::gather_pieces(input, d, s, *group);
  return GatherFunction::apply(input, d, s, group);
}

at::Tensor reduce_tensor(const at::Tensor& input, const CommPtr& group) {
  if (!model_is_distributed(group)) return input;
  detail::check_defined("reduce_tensor", "input", input, group->rank());
  if (!needs_autograd(input)) return detail::reduce_sum(input, *group);
  return ReduceFunction::apply(input, group);
}

at::Tensor sync_tensor(const at::Tensor& input, int64_t dim, const ShardSizes& sizes,
                       const CommPtr& group, bool gather_in_fwd) {
  constexpr const char* fn = "sync_tensor";
  if (!model_is_distributed(group)) return input;
  const int r = group->rank();
  detail::check_defined(fn, "input", input, r);
  const bool gathers = gather_in_fwd && sizes.has_value();
  int64_t d = 0;
  std::vector<int64_t> s;
  if (gathers) {
    d = detail::normalize_dim(fn, "dim", dim, input.dim(), r);
    s = detail::require_sizes(fn, "sizes", sizes, group->size(), r);
    detail::check_local(fn, "sizes", s, input, d, r);
  }
  if (!needs_autograd(input)) return gathers ? detail::gather_pieces(input, d, s, *group) : input;
  return SyncFunction::apply(input, d, s, group, gathers);
}

at::Tensor reduce_shard_tensor(const at::Tensor& input, int64_t dim, const ShardSizes& sizes,
                               const CommPtr& group) {
  constexpr const char* fn = "reduce_shard_tensor";
  if (!model_is_distributed(group)) return input;
  const int r = group->rank();
  detail::check_defined(fn, "input", input, r);
  const int64_t d = detail::normalize_dim(fn, "dim", dim, input.dim(), r);
  const auto& s = detail::require_sizes(fn, "sizes", sizes, group->size(), r);
  detail::check_total(fn, "sizes", s, input, d, r);
  if (!needs_autograd(input)) return detail::reduce_scatter_pieces(input, d, s, *group);
  return ReduceShardFunction::apply(input, d, s, group);
}

at::Tensor all_to_all_transpose(const at::Tensor& input, int64_t dim_split,
                                const ShardSizes& split_sizes, int64_t dim_concat,
                                const ShardSizes& concat_sizes, const CommPtr& group) {
  constexpr const char* fn = "all_to_all_transpose";
  if (!model_is_distributed(group)) return input;
  const int r = group->rank(), w = group->size();
  detail::check_defined(fn, "input", input, r);
  const int64_t ds = detail::normalize_dim(fn, "dim_split", dim_split, input.dim(), r);
  const int64_t dc = detail::normalize_dim(fn, "dim_concat", dim_concat, input.dim(), r);
  if (ds == dc) {
    detail::fail(
        fn, "dim_concat",
        "a dim other than dim_split = " + std::to_string(dim_split) + " (dim " +
            std::to_string(ds) + " after normalisation)",
        std::to_string(dim_concat) + " (dim " + std::to_string(dc) + " after normalisation)", r);
  }
  const auto& ss = detail::require_sizes(fn, "split_sizes", split_sizes, w, r);
  const auto& cs = detail::require_sizes(fn, "concat_sizes", concat_sizes, w, r);
  detail::check_total(fn, "split_sizes", ss, input, ds, r);
  detail::check_local(fn, "concat_sizes", cs, input, dc, r);
  if (!needs_autograd(input)) return detail::all_to_all_pieces(input, ds, ss, dc, cs, *group);
  return AllToAllFunction::apply(input, ds, ss, dc, cs, group);
}

std::pair<at::Tensor, ShardSizes> ensure_sharded(const at::Tensor& x, int64_t dim,
                                                 const ShardSizes& shard_sizes,
                                                 const CommPtr& group) {
  constexpr const char* fn = "ensure_sharded";
  const int r = group ? group->rank() : 0;
  const int w = group ? group->size() : 1;
  detail::check_defined(fn, "x", x, r);
  const int64_t d = detail::normalize_dim(fn, "dim", dim, x.dim(), r);
  if (shard_sizes) {
    detail::check_sizes(fn, "shard_sizes", *shard_sizes, w, r);
    detail::check_local(fn, "shard_sizes", *shard_sizes, x, d, r);
    return {x, shard_sizes};
  }
  std::vector<int64_t> sizes = balanced_sizes(x.size(d), w);
  at::Tensor sharded = shard_tensor(x, d, sizes, group);
  return {sharded, std::move(sizes)};
}

}  // namespace graphshard
