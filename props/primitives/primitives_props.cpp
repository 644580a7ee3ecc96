// Properties of the seven tensor primitives (SPEC §1, §2) against the single-process reference:
//   forward equality on every rank (bitwise: data are small integers, so even 16-bit sums are
//   exact, and equality with the reference on every rank means every rank agrees);
//   adjointness <F(x), y> == <x, B(y)> under the placement inner products (R once, S and P
//   summed over ranks), plus bitwise equality of the gradient with the reference's backward;
//   output memory format, and bypass (W = 1 returns the very same tensor).
// Each runs on simulated ranks (W in 1..8, RapidCheck, 100 cases by default) and is replayed
// over Gloo processes (ctest -L gloo).
#include <functional>

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "graphshard/primitives.h"
#include "harness.h"
#include "primitives.h"  // reference
#include "primitives_cases.h"

namespace graphshard::props {
namespace {

std::string on(const char* fn, const CommPtr& comm) {
  return std::string(fn) + " on rank " + std::to_string(comm->rank()) + " of " +
         std::to_string(comm->size());
}

at::Tensor leaf(const at::Tensor& t) {
  return t.detach().requires_grad_(true);
}

at::Tensor grad_of(const at::Tensor& out, const at::Tensor& x, const at::Tensor& y) {
  return torch::autograd::grad({out}, {x}, {y})[0];
}

// SPEC §0: with one rank the input itself comes back; otherwise the output is laid out in the
// input's memory format (not checked for empty outputs: ATen's contiguity flags of zero-size
// tensors depend on how they were made and carry no meaning).
void check_layout(const at::Tensor& out, const at::Tensor& in, const CommPtr& comm,
                  const std::string& what) {
  if (comm->size() == 1) {
    require(out.is_same(in), what + ": a group of one rank must return the input itself");
    return;
  }
  if (out.numel() == 0) return;
  const at::MemoryFormat fmt = get_memory_format(in);
  require(out.is_contiguous(fmt), what + ": output is not contiguous in the input's memory format");
}

std::vector<at::Tensor> per_rank(const PrimCase& c, int w, Stream s,
                                 const std::function<std::vector<int64_t>(int)>& shape) {
  std::vector<at::Tensor> out;
  for (int q = 0; q < w; ++q) out.push_back(make(c, shape(q), s, q));
  return out;
}

// ---- ShardTensor: R -> S(d) -----------------------------------------------------------------
void shard_forward(const CommPtr& comm, const PrimCase& c) {
  const at::Tensor x = make(c, shape_with(c, sum_of(c.sizes)), Stream::kInput, kReplicated);
  const at::Tensor out = shard_tensor(x, c.dim, c.sizes, comm, c.flag);
  expect_equal(out, reference::shard(x, c.dim, c.sizes, comm->rank()), on("shard_tensor", comm));
  check_layout(out, x, comm, on("shard_tensor", comm));
  if (comm->size() > 1 && out.numel() > 0) {
    // SPEC §2: a view of x exactly where piece r already is contiguous in x's memory format (as
    // torch.split(x, sizes, dim)[r].contiguous(format)), zero bytes copied; else a copy.
    const at::Tensor piece = x.narrow(c.dim, offsets_of(c.sizes)[comm->rank()],
                                      c.sizes[comm->rank()]);
    const bool view = piece.is_contiguous(get_memory_format(x));
    require(out.is_alias_of(x) == view, on("shard_tensor", comm) + (view ? ": copied a piece "
                                        "that is contiguous in place" : ": a view of a piece "
                                        "that is not contiguous"));
  }
}

void shard_adjoint(const CommPtr& comm, const PrimCase& c) {
  const int r = comm->rank();
  const at::Tensor x = leaf(make(c, shape_with(c, sum_of(c.sizes)), Stream::kInput, kReplicated));
  const auto ys =
      per_rank(c, comm->size(), Stream::kGrad, [&](int q) { return shape_with(c, c.sizes[q]); });
  const at::Tensor out = shard_tensor(x, c.dim, c.sizes, comm, /*gather_in_backward=*/true);
  const at::Tensor gx = grad_of(out, x, ys[r]);
  expect_equal(gx, reference::gather(ys, c.dim), on("shard_tensor backward", comm));
  expect_adjoint(sum_over_ranks(comm, dot_f64(out, ys[r])), dot_f64(x, gx), c.dtype.type,
                 on("shard_tensor", comm));
}

// gather_in_backward=false: not an adjoint; piece r is the upstream gradient, the rest zero.
void shard_expand(const CommPtr& comm, const PrimCase& c) {
  const int r = comm->rank();
  const at::Tensor x = leaf(make(c, shape_with(c, sum_of(c.sizes)), Stream::kInput, kReplicated));
  const at::Tensor y = make(c, shape_with(c, c.sizes[r]), Stream::kGrad, r);
  const at::Tensor out = shard_tensor(x, c.dim, c.sizes, comm, /*gather_in_backward=*/false);
  const at::Tensor gx = grad_of(out, x, y);
  expect_equal(gx, reference::expand(y, c.dim, c.sizes, r),
               on("shard_tensor(gather_in_backward=false) backward", comm));
  if (comm->size() > 1 && gx.numel() > 0) {
    require(gx.is_contiguous(get_memory_format(y)),
            on("shard_tensor expand", comm) + ": gradient not in the upstream memory format");
  }
}

// ---- GatherTensor: S(d) -> R ----------------------------------------------------------------
void gather_forward(const CommPtr& comm, const PrimCase& c) {
  const auto xs =
      per_rank(c, comm->size(), Stream::kInput, [&](int q) { return shape_with(c, c.sizes[q]); });
  const at::Tensor& x = xs[comm->rank()];
  const at::Tensor out = gather_tensor(x, c.dim, c.sizes, comm);
  expect_equal(out, reference::gather(xs, c.dim), on("gather_tensor", comm));
  check_layout(out, x, comm, on("gather_tensor", comm));
}

void gather_adjoint(const CommPtr& comm, const PrimCase& c) {
  const int r = comm->rank();
  const at::Tensor x = leaf(make(c, shape_with(c, c.sizes[r]), Stream::kInput, r));
  const at::Tensor y = make(c, shape_with(c, sum_of(c.sizes)), Stream::kGrad, kReplicated);
  const at::Tensor out = gather_tensor(x, c.dim, c.sizes, comm);
  const at::Tensor gx = grad_of(out, x, y);
  expect_equal(gx, reference::shard(y, c.dim, c.sizes, r), on("gather_tensor backward", comm));
  expect_adjoint(dot_f64(out, y), sum_over_ranks(comm, dot_f64(x, gx)), c.dtype.type,
                 on("gather_tensor", comm));
}

// ---- ReduceTensor: P -> R -------------------------------------------------------------------
void reduce_forward(const CommPtr& comm, const PrimCase& c) {
  const auto xs = per_rank(c, comm->size(), Stream::kInput,
                           [&](int) { return shape_with(c, sum_of(c.sizes)); });
  const at::Tensor& x = xs[comm->rank()];
  const at::Tensor out = reduce_tensor(x, comm);
  expect_equal(out, reference::reduce(xs), on("reduce_tensor", comm));
  if (comm->size() == 1) require(out.is_same(x), on("reduce_tensor", comm) + ": no bypass");
}

void reduce_adjoint(const CommPtr& comm, const PrimCase& c) {
  const int r = comm->rank();
  const at::Tensor x = leaf(make(c, shape_with(c, sum_of(c.sizes)), Stream::kInput, r));
  const at::Tensor y = make(c, shape_with(c, sum_of(c.sizes)), Stream::kGrad, kReplicated);
  const at::Tensor out = reduce_tensor(x, comm);
  const at::Tensor gx = grad_of(out, x, y);
  expect_equal(gx, y, on("reduce_tensor backward", comm));
  expect_adjoint(dot_f64(out, y), sum_over_ranks(comm, dot_f64(x, gx)), c.dtype.type,
                 on("reduce_tensor", comm));
}

// ---- SyncTensor: S(d) -> R (gathers) or R -> R; gradients arrive as P ----------------------
ShardSizes sync_sizes(const PrimCase& c) {
  return c.sizes_set ? ShardSizes(c.sizes) : std::nullopt;
}

void sync_forward(const CommPtr& comm, const PrimCase& c) {
  const bool gathers = c.flag && c.sizes_set;
  if (gathers) {
    const auto xs =
        per_rank(c, comm->size(), Stream::kInput, [&](int q) { return shape_with(c, c.sizes[q]); });
    const at::Tensor& x = xs[comm->rank()];
    const at::Tensor out = sync_tensor(x, c.dim, sync_sizes(c), comm, c.flag);
    expect_equal(out, reference::gather(xs, c.dim), on("sync_tensor (gathering)", comm));
    check_layout(out, x, comm, on("sync_tensor", comm));
  } else {
    const at::Tensor x = make(c, shape_with(c, sum_of(c.sizes)), Stream::kInput, kReplicated);
    const at::Tensor out = sync_tensor(x, c.dim, sync_sizes(c), comm, c.flag);
    expect_equal(out, x, on("sync_tensor (not gathering)", comm));
    if (comm->size() == 1) require(out.is_same(x), on("sync_tensor", comm) + ": no bypass");
  }
}

void sync_adjoint(const CommPtr& comm, const PrimCase& c) {
  const int r = comm->rank();
  const bool gathers = c.flag && c.sizes_set;
  const at::Tensor x =
      gathers ? leaf(make(c, shape_with(c, c.sizes[r]), Stream::kInput, r))
              : leaf(make(c, shape_with(c, sum_of(c.sizes)), Stream::kInput, kReplicated));
  // Upstream gradients differ per rank (P).
  const auto ys =
      per_rank(c, comm->size(), Stream::kGrad, [&](int) { return shape_with(c, sum_of(c.sizes)); });
  const at::Tensor out = sync_tensor(x, c.dim, sync_sizes(c), comm, c.flag);
  const at::Tensor gx = grad_of(out, x, ys[r]);
  const at::Tensor summed = reference::reduce(ys);
  expect_equal(gx, gathers ? reference::shard(summed, c.dim, c.sizes, r) : summed,
               on("sync_tensor backward", comm));
  const double lhs = sum_over_ranks(comm, dot_f64(out, ys[r]));
  const double rhs = gathers ? sum_over_ranks(comm, dot_f64(x, gx)) : dot_f64(x, gx);
  expect_adjoint(lhs, rhs, c.dtype.type, on("sync_tensor", comm));
}

// ---- ReduceShardTensor: P -> S(d) -----------------------------------------------------------
void reduce_shard_forward(const CommPtr& comm, const PrimCase& c) {
  const auto xs = per_rank(c, comm->size(), Stream::kInput,
                           [&](int) { return shape_with(c, sum_of(c.sizes)); });
  const at::Tensor& x = xs[comm->rank()];
  const at::Tensor out = reduce_shard_tensor(x, c.dim, c.sizes, comm);
  expect_equal(out, reference::reduce_shard(xs, c.dim, c.sizes, comm->rank()),
               on("reduce_shard_tensor", comm));
  check_layout(out, x, comm, on("reduce_shard_tensor", comm));
}

void reduce_shard_adjoint(const CommPtr& comm, const PrimCase& c) {
  const int r = comm->rank();
  const at::Tensor x = leaf(make(c, shape_with(c, sum_of(c.sizes)), Stream::kInput, r));
  const auto ys =
      per_rank(c, comm->size(), Stream::kGrad, [&](int q) { return shape_with(c, c.sizes[q]); });
  const at::Tensor out = reduce_shard_tensor(x, c.dim, c.sizes, comm);
  const at::Tensor gx = grad_of(out, x, ys[r]);
  expect_equal(gx, reference::gather(ys, c.dim), on("reduce_shard_tensor backward", comm));
  expect_adjoint(sum_over_ranks(comm, dot_f64(out, ys[r])), sum_over_ranks(comm, dot_f64(x, gx)),
                 c.dtype.type, on("reduce_shard_tensor", comm));
}

// ---- AllToAllTranspose: S(dim2) -> S(dim) ---------------------------------------------------
void all_to_all_forward(const CommPtr& comm, const PrimCase& c) {
  const auto xs = per_rank(c, comm->size(), Stream::kInput,
                           [&](int q) { return shape_with(c, sum_of(c.sizes), c.sizes2[q]); });
  const at::Tensor& x = xs[comm->rank()];
  const at::Tensor out = all_to_all_transpose(x, c.dim, c.sizes, c.dim2, c.sizes2, comm);
  expect_equal(out, reference::all_to_all(xs, c.dim, c.sizes, c.dim2, comm->rank()),
               on("all_to_all_transpose", comm));
  check_layout(out, x, comm, on("all_to_all_transpose", comm));
}

void all_to_all_adjoint(const CommPtr& comm, const PrimCase& c) {
  const int r = comm->rank();
  const at::Tensor x =
      leaf(make(c, shape_with(c, sum_of(c.sizes), c.sizes2[r]), Stream::kInput, r));
  const auto ys = per_rank(c, comm->size(), Stream::kGrad,
                           [&](int q) { return shape_with(c, c.sizes[q], sum_of(c.sizes2)); });
  const at::Tensor out = all_to_all_transpose(x, c.dim, c.sizes, c.dim2, c.sizes2, comm);
  const at::Tensor gx = grad_of(out, x, ys[r]);
  expect_equal(gx, reference::all_to_all(ys, c.dim2, c.sizes2, c.dim, r),
               on("all_to_all_transpose backward", comm));
  expect_adjoint(sum_over_ranks(comm, dot_f64(out, ys[r])), sum_over_ranks(comm, dot_f64(x, gx)),
                 c.dtype.type, on("all_to_all_transpose", comm));
}

// ---- EnsureSharded --------------------------------------------------------------------------
std::vector<int64_t> balanced(int64_t n, int w) {
  std::vector<int64_t> s(w, n / w);
  for (int64_t q = 0; q < n % w; ++q) ++s[q];
  return s;
}

void ensure_sharded_unset(const CommPtr& comm, const PrimCase& c) {
  const at::Tensor x = make(c, shape_with(c, sum_of(c.sizes)), Stream::kInput, kReplicated);
  const auto [out, sizes] = ensure_sharded(x, c.dim, std::nullopt, comm);
  const auto expected = balanced(sum_of(c.sizes), comm->size());
  require(sizes == ShardSizes(expected), on("ensure_sharded", comm) + ": sizes " +
                                             (sizes ? list_str(*sizes) : "None") + ", expected " +
                                             list_str(expected));
  expect_equal(out, reference::shard(x, c.dim, expected, comm->rank()), on("ensure_sharded", comm));
  check_layout(out, x, comm, on("ensure_sharded", comm));
}

void ensure_sharded_set(const CommPtr& comm, const PrimCase& c) {
  const int r = comm->rank();
  const at::Tensor x = make(c, shape_with(c, c.sizes[r]), Stream::kInput, r);
  const auto [out, sizes] = ensure_sharded(x, c.dim, c.sizes, comm);
  require(out.is_same(x), on("ensure_sharded", comm) + ": sharded input was not returned as is");
  require(sizes == ShardSizes(c.sizes), on("ensure_sharded", comm) + ": sizes changed");
}

}  // namespace

GRAPHSHARD_PROPERTY(ShardTensor, ForwardKeepsPieceOfRank, gen_any_case, shard_forward);
GRAPHSHARD_PROPERTY(ShardTensor, BackwardGatherIsAdjoint, gen_float_case, shard_adjoint);
GRAPHSHARD_PROPERTY(ShardTensor, BackwardExpandKeepsUpstreamPieceAndZeros, gen_float_case,
                    shard_expand);
GRAPHSHARD_PROPERTY(GatherTensor, ForwardConcatenatesPiecesInRankOrder, gen_any_case,
                    gather_forward);
GRAPHSHARD_PROPERTY(GatherTensor, BackwardSplitIsAdjoint, gen_float_case, gather_adjoint);
GRAPHSHARD_PROPERTY(ReduceTensor, ForwardMatchesWholeWorldSum, gen_any_case, reduce_forward);
GRAPHSHARD_PROPERTY(ReduceTensor, BackwardIdentityIsAdjoint, gen_float_case, reduce_adjoint);
GRAPHSHARD_PROPERTY(SyncTensor, ForwardGathersOnlyWhenAsked, gen_any_case, sync_forward);
GRAPHSHARD_PROPERTY(SyncTensor, BackwardReduceIsAdjoint, gen_float_case, sync_adjoint);
GRAPHSHARD_PROPERTY(ReduceShardTensor, ForwardMatchesPieceOfWholeWorldSum, gen_any_case,
                    reduce_shard_forward);
GRAPHSHARD_PROPERTY(ReduceShardTensor, BackwardGatherIsAdjoint, gen_float_case,
                    reduce_shard_adjoint);
GRAPHSHARD_PROPERTY(AllToAllTranspose, ForwardMatchesRebuildAndRecut, gen_any_case_2d,
                    all_to_all_forward);
GRAPHSHARD_PROPERTY(AllToAllTranspose, BackwardInverseTransposeIsAdjoint, gen_float_case_2d,
                    all_to_all_adjoint);
GRAPHSHARD_PROPERTY(EnsureSharded, UnsetSizesShardBalanced, gen_any_case, ensure_sharded_unset);
GRAPHSHARD_PROPERTY(EnsureSharded, SetSizesReturnInputUnchanged, gen_any_case, ensure_sharded_set);

}  // namespace graphshard::props
