// Rank faults inside every primitive and shard_graph_to_local over real Gloo processes (SPEC §5),
// the twin of faults_sim_test.cpp. Each test is one launch of W = 3 processes (the world is
// broken afterwards on purpose) with a short timeout (GRAPHSHARD_GLOO_TIMEOUT_MS, set by
// ctest). The victim is the last rank: inside the primitive, right before the first collective
// of the step, it dies (std::_Exit: no destructors, its sockets drop) or stalls past the
// timeout. The survivors must raise CommError naming the collective and blaming the victim alone
// within the timeout plus a margin.
#include <cstdio>
#include <thread>

#include <gtest/gtest.h>

#include "faults_cases.h"
#include "harness.h"

namespace graphshard::props {

std::chrono::milliseconds gloo_timeout();  // gloo_main.cpp

namespace {

constexpr std::chrono::seconds kMargin{2};

enum class Fault { kDies, kStalls };

void run_fault(const std::string& name, Fault fault) {
  set_checked_mode(false);  // the hook counts collectives; checked mode would add its own
  const CommPtr gloo = gloo_comm();
  ASSERT_TRUE(gloo) << "no Gloo communicator: run me under graphshard launch";
  const int r = gloo->rank(), victim = gloo->size() - 1;
  const FaultStep& s = fault_step(name);

  // A fault-free pass: the step communicates, and its first collective is the one to fault.
  std::string op;
  {
    auto hooked = std::make_shared<HookedCommunicator>(gloo);
    const auto step = s.prepare(hooked);
    const size_t before = hooked->ops().size();
    step();
    ASSERT_GT(hooked->ops().size(), before) << name << " issued no collective";
    op = hooked->ops()[before];
  }
  gloo->barrier();

  auto hooked = std::make_shared<HookedCommunicator>(gloo);
  const auto step = s.prepare(hooked);
  if (r == victim) {
    hooked->set_hook([&](const std::string& at, int64_t) {
      if (fault == Fault::kStalls) {
        // Past the survivors' deadline: one still waiting when this rank exits would see a
        // dropped connection instead of a timeout, and fail.
        std::this_thread::sleep_for(gloo_timeout() + std::chrono::seconds(1));
      }
      std::printf("[rank %d] %s: %s before %s\n", r, name.c_str(),
                  fault == Fault::kStalls ? "stalled, exits" : "dies", at.c_str());
      std::fflush(stdout);
      std::_Exit(0);
    });
    step();
    FAIL() << "the victim's step issued no collective";
  }

  const Raised got = run_timed(name, r, step);
  ASSERT_FALSE(got.error.empty()) << "rank " << r << ": the step returned although rank " << victim
                                  << (fault == Fault::kDies ? " died" : " stalled");
  ASSERT_TRUE(got.comm_error) << "not a CommError: " << got.error;
  EXPECT_EQ(got.op, op) << got.error;
  EXPECT_EQ(got.rank, r) << got.error;
  EXPECT_NE(got.error.find(op), std::string::npos) << got.error;
  EXPECT_NE(got.error.find("rank " + std::to_string(r)), std::string::npos) << got.error;
  EXPECT_LE(got.elapsed, gloo_timeout() + kMargin) << got.error;
  // Nothing arrives from a staller: the survivors can only time out.
  if (fault == Fault::kStalls) EXPECT_TRUE(got.timeout) << got.error;
  // The root cause alone (comm.h, "Who is blamed"): the victim, also for a survivor whose first
  // lost peer was another survivor that had raised (and exited) before it.
  EXPECT_EQ(got.peers, std::vector<int>{victim}) << got.error;
  EXPECT_TRUE(names_rank(got.error, victim)) << got.error;
  survivors_checked(victim);  // rank 0, the store's host, stays until all survivors have checked
}

class FaultsGloo : public testing::TestWithParam<std::string> {};

TEST_P(FaultsGloo, SurvivorsRaiseWhenARankDiesInTheStep) {
  run_fault(GetParam(), Fault::kDies);
}

TEST_P(FaultsGloo, SurvivorsTimeOutWhenARankStallsInTheStep) {
  run_fault(GetParam(), Fault::kStalls);
}

INSTANTIATE_TEST_SUITE_P(Primitives, FaultsGloo, testing::ValuesIn(fault_step_names()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
}  // namespace graphshard::props
