// Bad input (SPEC §5) on random cases: every documented precondition of every primitive,
// violated on purpose on all ranks, raises c10::ValueError on EVERY rank, naming the function and
// the argument, before any collective (the simulated world counts none), so no rank is left
// waiting; no input is modified. The violations are the bad-input catalogue's
// (badinput_catalogue.h); here they are drawn on random shapes, dims, sizes, dtypes and layouts.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include "badinput_catalogue.h"

namespace graphshard::props {
namespace {

// Draws W in [2, 8] (W = 1 bypasses), a valid case, and one violation of it.
void check_one_violation(const std::string& function) {
  const int w = *rc::gen::inRange(2, 9).as("world size");
  const PrimCase c = *gen_prim_case(w, 2, true).as("case");
  const std::vector<BadInputCase> cases = cases_of(function, primitive_cases(c));
  const auto k = *rc::gen::inRange<size_t>(0, cases.size()).as("violation");
  RC_TAG(cases[k].argument);
  const std::string problem = run_case_on_sim(cases[k], w);
  if (!problem.empty()) RC_FAIL(problem);
}

}  // namespace

RC_GTEST_PROP(ShardTensor, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  check_one_violation("shard_tensor");
}

RC_GTEST_PROP(GatherTensor, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  check_one_violation("gather_tensor");
}

RC_GTEST_PROP(ReduceTensor, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  check_one_violation("reduce_tensor");
}

RC_GTEST_PROP(SyncTensor, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  check_one_violation("sync_tensor");
}

RC_GTEST_PROP(ReduceShardTensor, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  check_one_violation("reduce_shard_tensor");
}

RC_GTEST_PROP(AllToAllTranspose, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  check_one_violation("all_to_all_transpose");
}

RC_GTEST_PROP(EnsureSharded, BadArgumentsRaiseValueErrorOnEveryRank, ()) {
  check_one_violation("ensure_sharded");
}

}  // namespace graphshard::props
