// Bad input (SPEC §5): every documented precondition of every primitive, violated on purpose on
// all ranks, raises c10::ValueError on EVERY rank, naming the function and the argument, before
// any collective (the simulated world counts none), so no rank is left waiting.
#include <chrono>
#include <functional>
#include <string>

#include <c10/util/Exception.h>
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "graphshard/primitives.h"
#include "primitives_cases.h"
#include "sim.h"

namespace graphshard::props {
namespace {

struct Violation {
  std::string arg;  // the argument the message must name
  std::function<void(const CommPtr&)> call;
};

void expect_value_error_on_every_rank(int w, const char* fn, const Violation& v) {
  auto world = sim::SimWorld::create(w, std::chrono::seconds(30));
  const auto outcomes = sim::run_ranks_collect(world, v.call);
  const std::string prefix = std::string("graphshard::") + fn + ": " + v.arg;
  for (int r = 0; r < w; ++r) {
    const auto& o = outcomes[r];
    if (o.ok) RC_FAIL("rank " + std::to_string(r) + " accepted a bad " + v.arg);
    std::string message;
    try {
      std::rethrow_exception(o.exception);
    } catch (const c10::ValueError& e) {
      message = e.what();
    } catch (...) {
      RC_FAIL("rank " + std::to_string(r) +
              " raised something other than c10::ValueError: " + o.error);
    }
    if (message.find(prefix) == std::string::npos ||
        message.find("(rank " + std::to_string(r) + ")") == std::string::npos) {
      RC_FAIL("rank " + std::to_string(r) + ": message does not name '" + prefix +
              "' and the rank: " + message);
    }
  }
  for (int64_t n : world->op_counts()) {
    if (n != 0) RC_FAIL("a rank entered a collective before the arguments were checked");
  }
}

// Data for rank r of a case (values do not matter, shapes do).
at::Tensor data(const PrimCase& c, const std::vector<int64_t>& shape, int r) {
  return make(c, shape, Stream::kInput, r);
}

int64_t bad_dim(const PrimCase& c) {
  const auto ndim = static_cast<int64_t>(c.shape.size());
  return c.flag ? ndim + static_cast<int64_t>(c.seed % 3) : -ndim - 1;
}
std::vector<int64_t> longer(const PrimCase& c) {
  auto s = c.sizes;
  s.push_back(1);
  return s;
}
std::vector<int64_t> negative(const PrimCase& c) {
  auto s = c.sizes;
  s[c.seed % s.size()] = -1;
  return s;
}

// The sharded-input checks shared by gather-like functions (input is piece r along dim).
template <typename F>
std::vector<Violation> sharded_input_violations(const PrimCase& c, F f, bool with_nullopt) {
  const auto piece = [c](int r) { return shape_with(c, c.sizes[r]); };
  std::vector<Violation> v = {
      {"dim",
       [=](const CommPtr& g) {
         f(data(c, piece(g->rank()), g->rank()), bad_dim(c), ShardSizes(c.sizes), g);
       }},
      {"sizes length",
       [=](const CommPtr& g) {
         f(data(c, piece(g->rank()), g->rank()), c.dim, ShardSizes(longer(c)), g);
       }},
      {"sizes",
       [=](const CommPtr& g) {
         f(data(c, piece(g->rank()), g->rank()), c.dim, ShardSizes(negative(c)), g);
       }},
      {"sizes[",
       [=](const CommPtr& g) {
         f(data(c, shape_with(c, c.sizes[g->rank()] + 1), g->rank()), c.dim, ShardSizes(c.sizes),
           g);
       }},
      {"input", [=](const CommPtr& g) { f(at::Tensor(), c.dim, ShardSizes(c.sizes), g); }},
  };
  if (with_nullopt) {
    v.push_back({"sizes", [=](const CommPtr& g) {
                   f(data(c, piece(g->rank()), g->rank()), c.dim, std::nullopt, g);
                 }});
  }
  return v;
}

// The whole-input checks shared by split-like functions (input is the full tensor).
template <typename F>
std::vector<Violation> whole_input_violations(const PrimCase& c, F f) {
  const auto full = shape_with(c, sum_of(c.sizes));
  return {
      {"dim", [=](const CommPtr& g) { f(data(c, full, g->rank()), bad_dim(c), c.sizes, g); }},
      {"sizes", [=](const CommPtr& g) { f(data(c, full, g->rank()), c.dim, std::nullopt, g); }},
      {"sizes length", [=](const CommPtr& g) { f(data(c, full, g->rank()), c.dim, longer(c), g); }},
      {"sizes", [=](const CommPtr& g) { f(data(c, full, g->rank()), c.dim, negative(c), g); }},
      {"sizes",
       [=](const CommPtr& g) {
         f(data(c, shape_with(c, sum_of(c.sizes) + 1), g->rank()), c.dim, c.sizes, g);
       }},
      {"input", [=](const CommPtr& g) { f(at::Tensor(), c.dim, c.sizes, g); }},
  };
}

std::vector<Violation> all_to_all_violations(const PrimCase& c) {
  const auto ndim = static_cast<int64_t>(c.shape.size());
  const auto in = [c](int r) { return shape_with(c, sum_of(c.sizes), c.sizes2[r]); };
  const auto run = [](const at::Tensor& x, int64_t ds, ShardSizes ss, int64_t dc, ShardSizes cs,
                      const CommPtr& g) { all_to_all_transpose(x, ds, ss, dc, cs, g); };
  auto longer2 = c.sizes2;
  longer2.push_back(0);
  // The same dim written the other way round (1 and -1 on a 2-D tensor).
  const int64_t same = norm_dim(c.dim, c.shape.size()) == c.dim ? c.dim - ndim : c.dim + ndim;
  return {
      {"dim_split",
       [=](const CommPtr& g) {
         run(data(c, in(g->rank()), g->rank()), bad_dim(c), c.sizes, c.dim2, c.sizes2, g);
       }},
      {"dim_concat",
       [=](const CommPtr& g) {
         run(data(c, in(g->rank()), g->rank()), c.dim, c.sizes, bad_dim(c), c.sizes2, g);
       }},
      {"dim_concat",
       [=](const CommPtr& g) {
         run(data(c, in(g->rank()), g->rank()), c.dim, c.sizes, same, c.sizes2, g);
       }},
      {"split_sizes",
       [=](const CommPtr& g) {
         run(data(c, in(g->rank()), g->rank()), c.dim, std::nullopt, c.dim2, c.sizes2, g);
       }},
      {"concat_sizes",
       [=](const CommPtr& g) {
         run(data(c, in(g->rank()), g->rank()), c.dim, c.sizes, c.dim2, std::nullopt, g);
       }},
      {"split_sizes length",
       [=](const CommPtr& g) {
         run(data(c, in(g->rank()), g->rank()), c.dim, longer(c), c.dim2, c.sizes2, g);
       }},
      {"concat_sizes length",
       [=](const CommPtr& g) {
         run(data(c, in(g->rank()), g->rank()), c.dim, c.sizes, c.dim2, longer2, g);
       }},
      {"split_sizes",
       [=](const CommPtr& g) {
         run(data(c, shape_with(c, sum_of(c.sizes) + 1, c.sizes2[g->rank()]), g->rank()), c.dim,
             c.sizes, c.dim2, c.sizes2, g);
       }},
      {"concat_sizes[",
       [=](const CommPtr& g) {
         run(data(c, shape_with(c, sum_of(c.sizes), c.sizes2[g->rank()] + 1), g->rank()), c.dim,
             c.sizes, c.dim2, c.sizes2, g);
       }},
      {"input", [=](const CommPtr& g) { run(at::Tensor(), c.dim, c.sizes, c.dim2, c.sizes2, g); }},
  };
}

std::vector<Violation> ensure_sharded_violations(const PrimCase& c) {
  const auto piece = [c](int r) { return shape_with(c, c.sizes[r]); };
  return {
      {"dim",
       [=](const CommPtr& g) {
         ensure_sharded(data(c, piece(g->rank()), g->rank()), bad_dim(c), c.sizes, g);
       }},
      {"dim",
       [=](const CommPtr& g) {
         ensure_sharded(data(c, piece(g->rank()), g->rank()), bad_dim(c), std::nullopt, g);
       }},
      {"shard_sizes length",
       [=](const CommPtr& g) {
         ensure_sharded(data(c, piece(g->rank()), g->rank()), c.dim, longer(c), g);
       }},
      {"shard_sizes[",
       [=](const CommPtr& g) {
         ensure_sharded(data(c, shape_with(c, c.sizes[g->rank()] + 1), g->rank()), c.dim, c.sizes,
                        g);
       }},
      {"x", [=](const CommPtr& g) { ensure_sharded(at::Tensor(), c.dim, c.sizes, g); }},
  };
}

// Draws W in [2, 8] (W = 1 bypasses), a valid case, and one violation of it.
template <typename Make>
void check_one_violation(const char* fn, Make make_violations) {
  const int w = *rc::gen::inRange(2, 9).as("world size");
  const PrimCase c = *gen_prim_case(w, 2, true).as("case");
  const std::vector<Violation> vs = make_violations(c);
  const auto k = *rc::gen::inRange<size_t>(0, vs.size()).as("violation");
  RC_TAG(vs[k].arg);
  expect_value_error_on_every_rank(w, fn, vs[k]);
}

}  // namespace

RC_GTEST_PROP(ShardTensor, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  check_one_violation("shard_tensor", [](const PrimCase& c) {
    return whole_input_violations(c, [](const at::Tensor& x, int64_t d, ShardSizes s,
                                        const CommPtr& g) { shard_tensor(x, d, s, g); });
  });
}

RC_GTEST_PROP(GatherTensor, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  check_one_violation("gather_tensor", [](const PrimCase& c) {
    return sharded_input_violations(
        c,
        [](const at::Tensor& x, int64_t d, ShardSizes s, const CommPtr& g) {
          gather_tensor(x, d, s, g);
        },
        /*with_nullopt=*/true);
  });
}

RC_GTEST_PROP(ReduceTensor, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  check_one_violation("reduce_tensor", [](const PrimCase&) {
    return std::vector<Violation>{
        {"input", [](const CommPtr& g) { reduce_tensor(at::Tensor(), g); }}};
  });
}

RC_GTEST_PROP(SyncTensor, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  // sizes unset is legal for sync_tensor (no gather), so it is not a violation.
  check_one_violation("sync_tensor", [](const PrimCase& c) {
    return sharded_input_violations(
        c,
        [](const at::Tensor& x, int64_t d, ShardSizes s, const CommPtr& g) {
          sync_tensor(x, d, s, g, /*gather_in_fwd=*/true);
        },
        /*with_nullopt=*/false);
  });
}

RC_GTEST_PROP(ReduceShardTensor, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  check_one_violation("reduce_shard_tensor", [](const PrimCase& c) {
    return whole_input_violations(c, [](const at::Tensor& x, int64_t d, ShardSizes s,
                                        const CommPtr& g) { reduce_shard_tensor(x, d, s, g); });
  });
}

RC_GTEST_PROP(AllToAllTranspose, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  check_one_violation("all_to_all_transpose", all_to_all_violations);
}

RC_GTEST_PROP(EnsureSharded, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  check_one_violation("ensure_sharded", ensure_sharded_violations);
}

}  // namespace graphshard::props
