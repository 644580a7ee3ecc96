// The graph kernels check their own preconditions (core/cpu/graph_kernels.h): an inconsistent
// input that gets past the public functions (from an internal caller) is a c10::ValueError
// "graphshard::<kernel>: <argument>: expected ..., got ...", never an out-of-bounds access.
// O(1) checks hold always; the O(E) scans (ids in range, sortedness) in checked mode or under
// debug checks. Each test calls a kernel directly with one inconsistency.
#include <functional>
#include <limits>
#include <string>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "cpu/graph_kernels.h"
#include "graph/graph_internal.h"
#include "graphshard/comm.h"
#include "graphshard/graph.h"
#ifdef GRAPHSHARD_WITH_CUDA
#include "cuda/kernels.h"
#endif

namespace graphshard {
namespace {

// f() must raise c10::ValueError with exactly `message`.
void expect_value_error(const std::function<void()>& f, const std::string& message) {
  try {
    f();
  } catch (const c10::ValueError& e) {
    EXPECT_EQ(e.what_without_backtrace(), message);
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "raised another exception than c10::ValueError: " << e.what();
    return;
  }
  ADD_FAILURE() << "raised nothing; expected: " << message;
}

at::Tensor ids(std::vector<int64_t> v, at::ScalarType dtype = at::kLong) {
  return at::tensor(v, at::kLong).to(dtype);
}
at::Tensor edges(std::vector<int64_t> src, std::vector<int64_t> dst) {
  return at::stack({ids(std::move(src)), ids(std::move(dst))});
}

// Sets checked mode and debug checks for a test, restores them after.
class Modes : public ::testing::Test {
 protected:
  void SetUp() override {
    saved_checked_ = checked_mode(), saved_debug_ = debug_checks();
    set_checked_mode(false);
    set_debug_checks(false);
  }
  void TearDown() override {
    set_checked_mode(saved_checked_);
    set_debug_checks(saved_debug_);
  }

 private:
  bool saved_checked_ = false, saved_debug_ = false;
};
class CheckedKernels : public Modes {
 protected:
  void SetUp() override {
    Modes::SetUp();
    set_checked_mode(true);
  }
};
using UncheckedKernels = Modes;

// ---- Always on: dims, dtypes, devices, counts -------------------------------------------------

TEST_F(UncheckedKernels, EveryRowKernelRejectsARowThatIsNotA1dIndexTensor) {
  const at::Tensor two_d = at::zeros({2, 3}, at::kLong), floats = at::zeros({3});
  expect_value_error([&] { cpu::first_unsorted(two_d); },
                     "graphshard::cpu::first_unsorted: row: expected a 1-D int32/int64 CPU "
                     "tensor, got Long[2, 3] on cpu");
  expect_value_error([&] { cpu::counting_sort_perm(floats, 4); },
                     "graphshard::cpu::counting_sort_perm: row: expected a 1-D int32/int64 CPU "
                     "tensor, got Float[3] on cpu");
  expect_value_error([&] { cpu::lower_bounds(at::Tensor(), {1}); },
                     "graphshard::cpu::lower_bounds: row: expected a 1-D int32/int64 CPU "
                     "tensor, got undefined");
  expect_value_error([&] { cpu::used_ids(two_d, 4); },
                     "graphshard::cpu::used_ids: row: expected a 1-D int32/int64 CPU tensor, got "
                     "Long[2, 3] on cpu");
  expect_value_error(
      [&] {
        cpu::used_ids(ids({0, 2}), 4, at::empty({3}, at::kLong));
      },
      "graphshard::cpu::used_ids: relabelled_into: expected a contiguous Long[2] "
      "on cpu, got Long[3] on cpu");
}

TEST_F(UncheckedKernels, CountingSortEdgesRejectsAnEdgeIndexThatIsNot2ByE) {
  const std::string expected =
      "graphshard::cpu::counting_sort_edges: edge_index: expected a [2, E] int32/int64 CPU "
      "tensor, got ";
  expect_value_error(
      [&] {
        cpu::counting_sort_edges(at::zeros({3, 4}, at::kLong), 4);
      },
      expected + "Long[3, 4] on cpu");
  expect_value_error(
      [&] {
        cpu::counting_sort_edges(at::zeros({1, 4}, at::kInt), 4);
      },
      expected + "Int[1, 4] on cpu");
  expect_value_error(
      [&] {
        cpu::counting_sort_edges(at::zeros({2, 4}, at::kDouble), 4);
      },
      expected + "Double[2, 4] on cpu");
  expect_value_error([&] { cpu::counting_sort_edges(at::zeros({8}, at::kLong), 4); },
                     expected + "Long[8] on cpu");
}

TEST_F(UncheckedKernels, NegativeKeyPartAndIdCountsAreRejectedBeforeAnyAllocation) {
  const at::Tensor row = ids({0, 1});
  expect_value_error(
      [&] { cpu::counting_sort_perm(row, -1); },
      "graphshard::cpu::counting_sort_perm: num_keys: expected a count >= 0, got -1");
  expect_value_error([&] { cpu::counting_sort_perm(row, 4, -2); },
                     "graphshard::cpu::counting_sort_perm: blocks: expected a count >= 0, got -2");
  expect_value_error(
      [&] {
        cpu::counting_sort_edges(edges({0, 1}, {0, 1}), -3);
      },
      "graphshard::cpu::counting_sort_edges: num_keys: expected a count >= 0, got "
      "-3");
  expect_value_error([&] { cpu::used_ids(row, -4); },
                     "graphshard::cpu::used_ids: n: expected a count >= 0, got -4");
}

// ---- Scans in checked mode: ids in range, sortedness -----------------------------------------

TEST_F(CheckedKernels, CountingSortPermRejectsAnIdAtOrAboveNumKeys) {
  expect_value_error(
      [&] {
        cpu::counting_sort_perm(ids({0, 4, 3}), 4);
      },
      "graphshard::cpu::counting_sort_perm: row: expected values in [0, 4), got "
      "values in [0, 4]");
  // int32, and a bound past the one-pass sort (the comparison path has the same precondition).
  expect_value_error(
      [&] {
        cpu::counting_sort_perm(ids({5, 3000000}, at::kInt), 3000000);
      },
      "graphshard::cpu::counting_sort_perm: row: expected values in [0, 3000000), "
      "got values in [5, 3000000]");
}

TEST_F(CheckedKernels, CountingSortPermRejectsANegativeId) {
  expect_value_error(
      [&] {
        cpu::counting_sort_perm(ids({2, -1}), 4);
      },
      "graphshard::cpu::counting_sort_perm: row: expected values in [0, 4), got "
      "values in [-1, 2]");
}

// With more parts than values the part size is 0: an id past the last part would divide by it.
TEST_F(CheckedKernels, CountingSortPermRejectsAnIdPastTheLastPartInsteadOfDividingByZero) {
  std::vector<int64_t> counts;
  expect_value_error(
      [&] {
        cpu::counting_sort_perm(ids({0, 3}), 3, 5, &counts);
      },
      "graphshard::cpu::counting_sort_perm: row: expected values in [0, 3), got "
      "values in [0, 3]");
}

TEST_F(CheckedKernels, CountingSortEdgesRejectsADestinationOutOfRangeOnEveryPath) {
  const std::string msg = "graphshard::cpu::counting_sort_edges: edge_index (destinations): ";
  // One-pass (4 keys), two-pass (5000 keys), comparison sort (2^24 keys).
  expect_value_error(
      [&] {
        cpu::counting_sort_edges(edges({0, 1}, {2, 7}), 4);
      },
      msg + "expected values in [0, 4), got values in [2, 7]");
  expect_value_error(
      [&] {
        cpu::counting_sort_edges(edges({0, 1}, {5000, 0}), 5000);
      },
      msg + "expected values in [0, 5000), got values in [0, 5000]");
  expect_value_error(
      [&] {
        cpu::counting_sort_edges(edges({0, 1}, {-1, 9}), 1 << 24);
      },
      msg + "expected values in [0, 16777216), got values in [-1, 9]");
}

TEST_F(CheckedKernels, LowerBoundsRejectsAnUnsortedRow) {
  expect_value_error(
      [&] {
        cpu::lower_bounds(ids({0, 2, 1, 3}), {1, 2});
      },
      "graphshard::cpu::lower_bounds: row: expected a non-decreasing row, got a "
      "decrease at index 2 (2 > 1)");
}

TEST_F(CheckedKernels, UsedIdsReportsAnIdOutOfRangeAsItsResultNotAnError) {
  // The callers turn in_range == false into their own message (with the rank): no scan needed.
  EXPECT_FALSE(cpu::used_ids(ids({0, 5}), 5).in_range);
  EXPECT_FALSE(cpu::used_ids(ids({-1, 2}, at::kInt), 5).in_range);
}

TEST_F(CheckedKernels, UsedIdsWritesTheRelabelledRowWhereItIsAsked) {
  const at::Tensor local = at::full({2, 4}, -1, at::kLong);  // row 0 receives it, row 1 untouched
  const cpu::UsedIds u = cpu::used_ids(ids({7, 2, 7, 5}), 8, local.select(0, 0));
  EXPECT_TRUE(at::equal(u.kept, ids({2, 5, 7})));
  EXPECT_TRUE(at::equal(local, at::tensor({2, 0, 2, 1, -1, -1, -1, -1}, at::kLong).view({2, 4})));
  EXPECT_EQ(u.relabelled.data_ptr(), local.data_ptr());
}

TEST_F(CheckedKernels, ColumnsIfInRangeCopiesItsColumnsAndChecksEveryId) {
  const at::Tensor ei = edges({0, 3, 1, 2}, {0, 1, 1, 2});
  const at::Tensor cols = cpu::columns_if_in_range(ei, 1, 3, 4, 3);
  EXPECT_TRUE(cols.is_contiguous());
  EXPECT_TRUE(at::equal(cols, ei.narrow(1, 1, 2)));
  EXPECT_TRUE(at::equal(cpu::columns_if_in_range(ei.to(at::kInt), 1, 3, 4, 3), cols.to(at::kInt)));
  EXPECT_EQ(cpu::columns_if_in_range(ei, 2, 2, 4, 3).sizes(), (std::vector<int64_t>{2, 0}));
  // An id out of range outside the copied columns too, in either row, at either end.
  constexpr int64_t lo = std::numeric_limits<int64_t>::min(),
                    hi = std::numeric_limits<int64_t>::max();
  for (const at::Tensor& bad :
       {edges({4, 3, 1, 2}, {0, 1, 1, 2}), edges({0, 3, 1, 2}, {0, 1, 1, 3}),
        edges({0, -1, 1, 2}, {0, 1, 1, 2}), edges({lo, 3, 1, 2}, {0, 1, 1, 2}),
        edges({0, 3, 1, 2}, {0, 1, 1, hi})}) {
    EXPECT_FALSE(cpu::columns_if_in_range(bad, 1, 3, 4, 3).defined()) << bad;
  }
  EXPECT_FALSE(cpu::columns_if_in_range(ei, 0, 0, 0, 3).defined());  // no valid source id
  expect_value_error([&] { cpu::columns_if_in_range(ei, 3, 1, 4, 3); },
                     "graphshard::cpu::columns_if_in_range: [lo, hi): expected a range within "
                     "[0, 4], got [3, 1)");
}

// Two threads: outside the ThreadSanitizer pass, which cannot see OpenMP's barriers (the name
// matches its exclusion, .ci/sanitizers).
TEST_F(CheckedKernels, ColumnsIfInRangeIsIdenticalForOneAndTwoThreads) {
  const int saved = at::get_num_threads();
  const at::Tensor big = at::randint(0, 1000, {2, 100000}, at::kLong);
  at::set_num_threads(1);
  const at::Tensor one = cpu::columns_if_in_range(big, 30000, 70000, 1000, 1000);
  at::set_num_threads(2);  // several chunks
  EXPECT_TRUE(at::equal(cpu::columns_if_in_range(big, 30000, 70000, 1000, 1000), one));
  EXPECT_TRUE(at::equal(one, big.narrow(1, 30000, 40000)));
  big[1][99999] = 1000;  // in the last chunk, outside the copied columns
  EXPECT_FALSE(cpu::columns_if_in_range(big, 30000, 70000, 1000, 1000).defined());
  at::set_num_threads(saved);
}

TEST_F(CheckedKernels, ConsistentInputsAtTheBoundsPass) {
  EXPECT_TRUE(at::equal(cpu::counting_sort_perm(ids({3, 0, 3, 1}), 4), ids({1, 3, 0, 2})));
  std::vector<int64_t> counts;
  cpu::counting_sort_perm(ids({2, 0}), 3, 5, &counts);
  EXPECT_EQ(counts, (std::vector<int64_t>{1, 0, 1, 0, 0}));
  const auto [sorted, perm] = cpu::counting_sort_edges(edges({0, 1}, {4999, 0}), 5000);
  EXPECT_TRUE(at::equal(perm, ids({1, 0})));
  EXPECT_EQ(cpu::lower_bounds(ids({0, 1, 1, 3}), {1, 2, 4}), (std::vector<int64_t>{1, 3, 4}));
  // No bounds, no search: a single part of unsorted edges is all of them.
  EXPECT_TRUE(cpu::lower_bounds(ids({2, 1}), {}).empty());
  EXPECT_TRUE(cpu::used_ids(ids({4, 0}), 5).in_range);
  EXPECT_TRUE(cpu::used_ids(ids({}), 0).in_range);
}

TEST_F(UncheckedKernels, DebugChecksAloneAlsoTurnTheScansOn) {
  set_debug_checks(true);
  expect_value_error(
      [&] {
        cpu::counting_sort_perm(ids({0, 9}), 4);
      },
      "graphshard::cpu::counting_sort_perm: row: expected values in [0, 4), got "
      "values in [0, 9]");
}

TEST_F(UncheckedKernels, TheScansAreOffOutsideCheckedModeAndDebugChecks) {
  // Safe to show on lower_bounds only: an unsorted row reads nothing out of bounds there.
  EXPECT_EQ(cpu::lower_bounds(ids({0, 2, 1, 3}), {2}).size(), 1u);
}

// ---- Through the internal callers --------------------------------------------------------------

TEST_F(CheckedKernels, AnInternalCallerPassingUnsortedEdgesOrABadBoundMeetsTheKernelsCheck) {
  expect_value_error(
      [&] {
        detail::sorted_edge_splits(edges({0, 0, 0}, {3, 1, 2}), {2, 2});
      },
      "graphshard::cpu::lower_bounds: row: expected a non-decreasing row, got a "
      "decrease at index 1 (3 > 1)");
  expect_value_error(
      [&] {
        detail::stable_sort_perm(ids({0, 6}), 6, 2);
      },
      "graphshard::cpu::counting_sort_perm: row: expected values in [0, 6), got "
      "values in [0, 6]");
}

TEST_F(CheckedKernels, PublicFunctionsStillNameThemselvesAndTheRankFirst) {
  expect_value_error(
      [&] {
        sort_edge_index_by_dst(edges({0, 1}, {0, 7}), 4);
      },
      "graphshard::sort_edge_index_by_dst: edge_index: expected destination ids "
      "in [0, 4) (max_value), got destination ids in [0, 7] (rank 0)");
}

// ---- CUDA host wrappers (core/cuda/kernels.h) ----------------------------------------------

#ifdef GRAPHSHARD_WITH_CUDA
TEST_F(UncheckedKernels, CudaWrappersRejectARowThatIsNotOnTheDevice) {
  const at::Tensor row = ids({0, 1});
  expect_value_error([&] { cuda_kernels::stable_sort_perm(row, 2, 0, nullptr); },
                     "graphshard::cuda_kernels::stable_sort_perm: row: expected a 1-D "
                     "int32/int64 CUDA tensor, got CPULongType of shape [2]");
  expect_value_error([&] { cuda_kernels::used_ids(row, 2); },
                     "graphshard::cuda_kernels::used_ids: row: expected a 1-D int32/int64 CUDA "
                     "tensor, got CPULongType of shape [2]");
}

TEST_F(CheckedKernels, CudaWrappersRejectCountsAndIdsOutOfRange) {
  if (!at::hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const at::Tensor row = ids({0, 6}).cuda();
  expect_value_error([&] { cuda_kernels::stable_sort_perm(row, -1, 0, nullptr); },
                     "graphshard::cuda_kernels::stable_sort_perm: num_keys: expected a count >= "
                     "0, got -1");
  expect_value_error([&] { cuda_kernels::stable_sort_perm(row, 6, 2, nullptr); },
                     "graphshard::cuda_kernels::stable_sort_perm: row: expected values in [0, "
                     "6), got values in [0, 6]");
  expect_value_error([&] { cuda_kernels::used_ids(row, -1); },
                     "graphshard::cuda_kernels::used_ids: n: expected a count >= 0, got -1");
  expect_value_error([&] { cuda_kernels::used_ids(row, 6); },
                     "graphshard::cuda_kernels::used_ids: row: expected values in [0, 6), got "
                     "values in [0, 6]");
}
#endif

}  // namespace
}  // namespace graphshard
