// Bad-input cases of the seven tensor primitives (SPEC §2, §5; primitives.h). With a group of
// one rank the primitives bypass (return the input, check nothing), except ensure_sharded,
// which checks its sizes with any group.
#include <utility>

#include <ATen/ATen.h>

#include "badinput_catalogue.h"
#include "graphshard/primitives.h"

namespace graphshard::props {
namespace {

using Input = std::function<at::Tensor(int rank)>;
using Apply = std::function<void(const at::Tensor&, const CommPtr&)>;
// f(x, dim, sizes, group) of the primitives that take one dim and one sizes list.
using Cut = std::function<void(const at::Tensor&, int64_t, const ShardSizes&, const CommPtr&)>;

// Rank r's data of a case (values do not matter, shapes do). Floating data require grad, so the
// checks are seen on the autograd path too.
at::Tensor data(const PrimCase& c, const std::vector<int64_t>& shape, int r) {
  at::Tensor x = make(c, shape, Stream::kInput, r);
  return x.is_floating_point() ? x.detach().requires_grad_(true) : x;
}

// A case whose rank-r input is input(r), passed with the group to apply.
BadInputCase prim(const char* fn, std::string arg, std::string what, Input input, Apply apply) {
  BadInputCase k{fn, std::move(arg), std::move(what)};
  k.accepted_at_w1 = true;  // the bypass
  k.make = [input = std::move(input), apply = std::move(apply)](const CommPtr& g, int r) {
    const at::Tensor x = input(r);
    return BadCall{{x}, [x, apply, g] { apply(x, g); }, r};
  };
  return k;
}

// A call made without the ranks' group: the message names rank 0.
BadInputCase on_rank0(BadInputCase k) {
  k.make = [make = std::move(k.make)](const CommPtr& g, int r) {
    BadCall call = make(g, r);
    call.message_rank = 0;
    return call;
  };
  return k;
}

Apply with(const Cut& f, int64_t dim, const ShardSizes& sizes) {
  return [=](const at::Tensor& x, const CommPtr& g) { f(x, dim, sizes, g); };
}

int64_t bad_dim(const PrimCase& c) {
  const auto ndim = static_cast<int64_t>(c.shape.size());
  return c.flag ? ndim + static_cast<int64_t>(c.seed % 3) : -ndim - 1;
}
std::vector<int64_t> negative(const PrimCase& c) {
  auto s = c.sizes;
  s[c.seed % s.size()] = -1;
  return s;
}
Input scalar(const PrimCase& c) {
  return [c](int r) { return data(c, {}, r); };
}
Input undefined() {
  return [](int) { return at::Tensor(); };
}

// The cases of one sizes list at each wrong length (W + 1, W - 1, none; kWrongLengths), the
// other arguments correct: apply(bad) passes the list of that length.
std::vector<BadInputCase> length_cases(const char* fn, const std::string& arg,
                                       const std::vector<int64_t>& sizes, const Input& input,
                                       const std::function<Apply(std::vector<int64_t>)>& apply) {
  std::vector<BadInputCase> v;
  for (WrongLength l : kWrongLengths) {
    v.push_back(prim(fn, arg, describe(l), input, apply(with_length(sizes, l))));
  }
  return v;
}

void append(std::vector<BadInputCase>& v, std::vector<BadInputCase> more) {
  for (auto& k : more) v.push_back(std::move(k));
}

// The whole-input checks of the split-like functions (the input is the full tensor).
std::vector<BadInputCase> whole_input_cases(const char* fn, const PrimCase& c, const Cut& f) {
  const Input full = [c](int r) { return data(c, shape_with(c, sum_of(c.sizes)), r); };
  const Input too_long = [c](int r) { return data(c, shape_with(c, sum_of(c.sizes) + 1), r); };
  std::vector<BadInputCase> v = {
      prim(fn, "dim", "outside [-ndim, ndim)", full, with(f, bad_dim(c), c.sizes)),
      prim(fn, "dim", "a 0-d input has no dim", scalar(c), with(f, c.dim, c.sizes)),
      prim(fn, "sizes", "unset (nullopt) with a distributed group", full,
           with(f, c.dim, std::nullopt)),
  };
  append(v, length_cases(fn, "sizes length", c.sizes, full,
                         [&](std::vector<int64_t> bad) { return with(f, c.dim, bad); }));
  append(v,
         {
             prim(fn, "sizes", "a negative entry", full, with(f, c.dim, negative(c))),
             prim(fn, "sizes", "sum(sizes) != input.size(dim)", too_long, with(f, c.dim, c.sizes)),
             prim(fn, "input", "undefined", undefined(), with(f, c.dim, c.sizes)),
         });
  return v;
}

// The sharded-input checks of the gather-like functions (the input is piece r along dim).
std::vector<BadInputCase> sharded_input_cases(const char* fn, const PrimCase& c, const Cut& f,
                                              bool unset_sizes_is_bad) {
  const Input piece = [c](int r) { return data(c, shape_with(c, c.sizes[r]), r); };
  const Input off_by_one = [c](int r) { return data(c, shape_with(c, c.sizes[r] + 1), r); };
  std::vector<BadInputCase> v = {
      prim(fn, "dim", "outside [-ndim, ndim)", piece, with(f, bad_dim(c), c.sizes)),
      prim(fn, "dim", "a 0-d input has no dim", scalar(c), with(f, c.dim, c.sizes)),
  };
  // Each rank's piece is its entry of the correct list: only the length is wrong.
  append(v, length_cases(fn, "sizes length", c.sizes, piece,
                         [&](std::vector<int64_t> bad) { return with(f, c.dim, bad); }));
  append(v, {
                prim(fn, "sizes", "a negative entry", piece, with(f, c.dim, negative(c))),
                prim(fn, "sizes[", "input.size(dim) != sizes[rank] on every rank", off_by_one,
                     with(f, c.dim, c.sizes)),
                prim(fn, "input", "undefined", undefined(), with(f, c.dim, c.sizes)),
            });
  if (unset_sizes_is_bad) {
    v.push_back(prim(fn, "sizes", "unset (nullopt) with a distributed group", piece,
                     with(f, c.dim, std::nullopt)));
  }
  return v;
}

std::vector<BadInputCase> shard_tensor_cases(const PrimCase& c) {
  return whole_input_cases(
      "shard_tensor", c, [](const at::Tensor& x, int64_t d, const ShardSizes& s, const CommPtr& g) {
        shard_tensor(x, d, s, g);
      });
}

std::vector<BadInputCase> gather_tensor_cases(const PrimCase& c) {
  return sharded_input_cases(
      "gather_tensor", c,
      [](const at::Tensor& x, int64_t d, const ShardSizes& s, const CommPtr& g) {
        gather_tensor(x, d, s, g);
      },
      /*unset_sizes_is_bad=*/true);
}

std::vector<BadInputCase> reduce_tensor_cases(const PrimCase&) {
  return {prim("reduce_tensor", "input", "undefined", undefined(),
               [](const at::Tensor& x, const CommPtr& g) { reduce_tensor(x, g); })};
}

std::vector<BadInputCase> sync_tensor_cases(const PrimCase& c) {
  // Unset sizes are legal for sync_tensor (it then does not gather): not a violation.
  return sharded_input_cases(
      "sync_tensor", c,
      [](const at::Tensor& x, int64_t d, const ShardSizes& s, const CommPtr& g) {
        sync_tensor(x, d, s, g, /*gather_in_fwd=*/true);
      },
      /*unset_sizes_is_bad=*/false);
}

std::vector<BadInputCase> reduce_shard_tensor_cases(const PrimCase& c) {
  return whole_input_cases("reduce_shard_tensor", c,
                           [](const at::Tensor& x, int64_t d, const ShardSizes& s,
                              const CommPtr& g) { reduce_shard_tensor(x, d, s, g); });
}

std::vector<BadInputCase> all_to_all_transpose_cases(const PrimCase& c) {
  const char* fn = "all_to_all_transpose";
  const auto ndim = static_cast<int64_t>(c.shape.size());
  const Input in = [c](int r) { return data(c, shape_with(c, sum_of(c.sizes), c.sizes2[r]), r); };
  const auto run = [](int64_t ds, ShardSizes ss, int64_t dc, ShardSizes cs) -> Apply {
    return
        [=](const at::Tensor& x, const CommPtr& g) { all_to_all_transpose(x, ds, ss, dc, cs, g); };
  };
  // The same dim written the other way round (1 and -1 on a 2-D tensor).
  const int64_t same = norm_dim(c.dim, c.shape.size()) == c.dim ? c.dim - ndim : c.dim + ndim;
  const Input split_too_long = [c](int r) {
    return data(c, shape_with(c, sum_of(c.sizes) + 1, c.sizes2[r]), r);
  };
  const Input concat_off_by_one = [c](int r) {
    return data(c, shape_with(c, sum_of(c.sizes), c.sizes2[r] + 1), r);
  };
  const auto& ss = c.sizes;
  const auto& cs = c.sizes2;
  std::vector<BadInputCase> v = {
      prim(fn, "dim_split", "outside [-ndim, ndim)", in, run(bad_dim(c), ss, c.dim2, cs)),
      prim(fn, "dim_concat", "outside [-ndim, ndim)", in, run(c.dim, ss, bad_dim(c), cs)),
      prim(fn, "dim_concat", "the same dim as dim_split after normalisation", in,
           run(c.dim, ss, same, cs)),
      prim(fn, "dim_split", "a 0-d input has no dim", scalar(c), run(c.dim, ss, c.dim2, cs)),
      prim(fn, "split_sizes", "unset (nullopt)", in, run(c.dim, std::nullopt, c.dim2, cs)),
      prim(fn, "concat_sizes", "unset (nullopt)", in, run(c.dim, ss, c.dim2, std::nullopt)),
  };
  append(v, length_cases(fn, "split_sizes length", ss, in,
                         [&](std::vector<int64_t> bad) { return run(c.dim, bad, c.dim2, cs); }));
  append(v, length_cases(fn, "concat_sizes length", cs, in,
                         [&](std::vector<int64_t> bad) { return run(c.dim, ss, c.dim2, bad); }));
  append(v,
         {
             prim(fn, "split_sizes", "a negative entry", in, run(c.dim, negative(c), c.dim2, cs)),
             prim(fn, "split_sizes", "sum(split_sizes) != input.size(dim_split)", split_too_long,
                  run(c.dim, ss, c.dim2, cs)),
             prim(fn, "concat_sizes[", "input.size(dim_concat) != concat_sizes[rank] on every rank",
                  concat_off_by_one, run(c.dim, ss, c.dim2, cs)),
             prim(fn, "input", "undefined", undefined(), run(c.dim, ss, c.dim2, cs)),
         });
  return v;
}

std::vector<BadInputCase> ensure_sharded_cases(const PrimCase& c) {
  const char* fn = "ensure_sharded";
  const Input piece = [c](int r) { return data(c, shape_with(c, c.sizes[r]), r); };
  const Input off_by_one = [c](int r) { return data(c, shape_with(c, c.sizes[r] + 1), r); };
  const auto ensure = [](int64_t d, ShardSizes s) -> Apply {
    return [=](const at::Tensor& x, const CommPtr& g) { ensure_sharded(x, d, s, g); };
  };
  // With a null group: W = 1, rank 0, whatever group the ranks are in.
  const auto alone = [](int64_t d, ShardSizes s) -> Apply {
    return [=](const at::Tensor& x, const CommPtr&) { ensure_sharded(x, d, s, nullptr); };
  };
  std::vector<BadInputCase> v = {
      prim(fn, "dim", "outside [-ndim, ndim), sizes given", piece, ensure(bad_dim(c), c.sizes)),
      prim(fn, "dim", "outside [-ndim, ndim), sizes unset", piece,
           ensure(bad_dim(c), std::nullopt)),
  };
  append(v, length_cases(fn, "shard_sizes length", c.sizes, piece,
                         [&](std::vector<int64_t> bad) { return ensure(c.dim, bad); }));
  append(v, {
                prim(fn, "shard_sizes", "a negative entry", piece, ensure(c.dim, negative(c))),
                prim(fn, "shard_sizes[", "x.size(dim) != shard_sizes[rank] on every rank",
                     off_by_one, ensure(c.dim, c.sizes)),
                prim(fn, "x", "undefined", undefined(), ensure(c.dim, c.sizes)),
                on_rank0(prim(fn, "shard_sizes length", "2 or more entries with a null group",
                              piece, alone(c.dim, with_length(c.sizes, WrongLength::kOneMore)))),
                on_rank0(prim(fn, "shard_sizes length", "an empty list with a null group", piece,
                              alone(c.dim, std::vector<int64_t>{}))),
                on_rank0(prim(fn, "shard_sizes[", "x.size(dim) != shard_sizes[0] with a null group",
                              piece, alone(c.dim, std::vector<int64_t>{sum_of(c.sizes) + 1}))),
            });
  for (auto& k : v) k.accepted_at_w1 = false;  // checked with any group, W = 1 included
  return v;
}

}  // namespace

std::vector<BadInputCase> primitive_cases(const PrimCase& c) {
  std::vector<BadInputCase> out;
  for (auto cases_of_one :
       {shard_tensor_cases, gather_tensor_cases, reduce_tensor_cases, sync_tensor_cases,
        reduce_shard_tensor_cases, all_to_all_transpose_cases, ensure_sharded_cases}) {
    for (auto& k : cases_of_one(c)) out.push_back(std::move(k));
  }
  return out;
}

}  // namespace graphshard::props
