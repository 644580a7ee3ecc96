// Rank faults inside every primitive and shard_graph_to_local on simulated ranks (SPEC §5): a
// rank killed at, or stalling past the timeout in, each collective that a step issues makes
// every survivor raise CommError naming that collective and the faulty rank, in time; nobody
// hangs. The steps and their inputs are in faults_cases.cpp; the Gloo twin is faults_gloo.cpp.
#include <algorithm>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "faults_cases.h"
#include "graphshard/primitives.h"
#include "sim.h"

namespace graphshard::props {
namespace {

using std::chrono::milliseconds;

// A death is seen at once (the world is marked broken), so survivors must raise long before
// this timeout: the timeout plays no part in detecting it.
constexpr milliseconds kKillTimeout{3000};
constexpr milliseconds kKillLimit{1000};
// A stall is seen through the timeout; the staller sleeps past the survivors' deadline.
constexpr milliseconds kStallTimeout{300};
constexpr milliseconds kStallMargin{400};
constexpr milliseconds kStallDelay = kStallTimeout + kStallMargin + milliseconds(100);

// A fault-free run of the step: how many collectives each rank issues before it, and which
// collectives the step itself issues (the same on every rank).
struct Trace {
  int64_t before = 0;
  std::vector<std::string> ops;
};

Trace trace(const FaultStep& s, int w) {
  std::vector<Trace> t(w);
  const auto out = sim::run_ranks_collect(sim::SimWorld::create(w), [&](const CommPtr& comm) {
    auto hooked = std::make_shared<HookedCommunicator>(comm);
    const auto step = s.prepare(hooked);
    const auto before = hooked->ops().size();
    step();
    t[comm->rank()] = {
        static_cast<int64_t>(before),
        {hooked->ops().begin() + static_cast<std::ptrdiff_t>(before), hooked->ops().end()}};
  });
  for (int r = 0; r < w; ++r) {
    EXPECT_TRUE(out[r].ok) << "fault-free run, rank " << r << ": " << out[r].error;
    EXPECT_EQ(t[r].before, t[0].before) << "rank " << r;
    EXPECT_EQ(t[r].ops, t[0].ops) << "rank " << r;
  }
  return t[0];
}

// Runs the step with `victim` faulted (by the world's fault injection); survivors time their
// step, the victim runs it plainly so that its injected fault ends its thread.
std::vector<Raised> run_faulted(const std::shared_ptr<sim::SimWorld>& world, const FaultStep& s,
                                int victim, std::vector<sim::RankOutcome>* outcomes) {
  std::vector<Raised> raised(world->size());
  *outcomes = sim::run_ranks_collect(world, [&](const CommPtr& comm) {
    const auto step = s.prepare(comm);
    if (comm->rank() == victim) {
      step();
      return;
    }
    raised[comm->rank()] = run_timed(s.name, comm->rank(), step);
  });
  return raised;
}

void expect_survivor_blames(const Raised& got, int rank, int victim, const std::string& op,
                            milliseconds limit) {
  SCOPED_TRACE("rank " + std::to_string(rank) + " (victim " + std::to_string(victim) + ", " + op +
               ")");
  ASSERT_FALSE(got.error.empty()) << "the step returned although a peer was lost";
  ASSERT_TRUE(got.comm_error) << "not a CommError: " << got.error;
  EXPECT_EQ(got.op, op) << got.error;
  EXPECT_EQ(got.rank, rank) << got.error;
  // The root cause alone (comm.h, "Who is blamed"), never a survivor that left after it.
  EXPECT_EQ(got.peers, std::vector<int>{victim}) << got.error;
  EXPECT_NE(got.error.find(op), std::string::npos) << got.error;
  EXPECT_TRUE(names_rank(got.error, victim)) << got.error;
  EXPECT_LE(got.elapsed, limit) << got.error;
}

// Every rank in turn killed before each collective of the step, W = 3 and 4.
void check_kills(const FaultStep& s) {
  for (int w : {3, 4}) {
    const Trace t = trace(s, w);
    ASSERT_FALSE(t.ops.empty()) << s.name << " issued no collective";
    for (int victim = 0; victim < w; ++victim) {
      for (size_t j = 0; j < t.ops.size(); ++j) {
        SCOPED_TRACE("W=" + std::to_string(w) + ", rank " + std::to_string(victim) +
                     " killed before collective " + std::to_string(j) + " of the step");
        auto world = sim::SimWorld::create(w, kKillTimeout);
        world->kill_at(victim, t.before + static_cast<int64_t>(j));
        std::vector<sim::RankOutcome> out;
        const auto raised = run_faulted(world, s, victim, &out);
        EXPECT_TRUE(out[victim].killed) << out[victim].error;
        for (int r = 0; r < w; ++r) {
          if (r == victim) continue;
          expect_survivor_blames(raised[r], r, victim, t.ops[j], kKillLimit);
          EXPECT_FALSE(raised[r].timeout) << "a death must not wait for the timeout";
        }
      }
    }
  }
}

// Rank 1 of 4 stalling past the timeout before each collective of the step.
void check_stalls(const FaultStep& s) {
  const int w = 4, victim = 1;
  const Trace t = trace(s, w);
  ASSERT_FALSE(t.ops.empty()) << s.name << " issued no collective";
  for (size_t j = 0; j < t.ops.size(); ++j) {
    SCOPED_TRACE("W=4, rank 1 stalls " + std::to_string(kStallDelay.count()) +
                 " ms before collective " + std::to_string(j) + " of the step");
    auto world = sim::SimWorld::create(w, kStallTimeout);
    world->delay(victim, t.before + static_cast<int64_t>(j), kStallDelay);
    std::vector<sim::RankOutcome> out;
    const auto raised = run_faulted(world, s, victim, &out);
    bool someone_timed_out = false;
    for (int r = 0; r < w; ++r) {
      if (r == victim) continue;
      expect_survivor_blames(raised[r], r, victim, t.ops[j], kStallTimeout + kStallMargin);
      someone_timed_out = someone_timed_out || raised[r].timeout;
    }
    EXPECT_TRUE(someone_timed_out) << "the stall must be detected by the timeout";
    // The staller itself does not hang either: it finds the world broken when it wakes, so its
    // error is the world's abort, not a timeout of its own. (Its elapsed time includes building
    // its inputs, which under load took 500 ms once: a tight bound on it would be a race; the
    // loose one only catches a hang.)
    EXPECT_FALSE(out[victim].ok);
    EXPECT_NE(out[victim].error.find(" aborted: "), std::string::npos) << out[victim].error;
    EXPECT_LE(out[victim].elapsed, kStallDelay + milliseconds(10000)) << out[victim].error;
  }
}

class FaultsSim : public testing::TestWithParam<std::string> {
 protected:
  // Fault injection counts collectives; checked mode would add its agreement exchanges.
  void SetUp() override { set_checked_mode(false); }
};

TEST_P(FaultsSim, SurvivorsRaiseNamingTheKilledOrStalledRankAndTheCollective) {
  const FaultStep& s = fault_step(GetParam());
  {
    SCOPED_TRACE("killed");
    check_kills(s);
  }
  {
    SCOPED_TRACE("stalled");
    check_stalls(s);
  }
}

INSTANTIATE_TEST_SUITE_P(Primitives, FaultsSim, testing::ValuesIn(fault_step_names()),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

// ensure_sharded with sizes unset is a local split forward: nothing to fault there (its
// backward gathers and is covered above).
TEST(FaultsSimScope, EnsureShardedForwardIssuesNoCollective) {
  const auto out = sim::run_ranks_collect(sim::SimWorld::create(3), [](const CommPtr& comm) {
    auto hooked = std::make_shared<HookedCommunicator>(comm);
    ensure_sharded(at::ones({7, 2}), 0, std::nullopt, hooked);
    ensure_sharded(at::ones({7, 2}).requires_grad_(true), 0, std::nullopt, hooked);
    if (!hooked->ops().empty()) throw std::runtime_error("ensure_sharded communicated");
  });
  for (const auto& o : out) EXPECT_TRUE(o.ok) << o.error;
}

// faults.cmake names one Gloo launch per step: every step, so none goes untested over Gloo.
TEST(FaultsSimScope, EveryStepHasAGlooDeathTest) {
  std::string names;
  for (const auto& n : fault_step_names()) names += (names.empty() ? "" : " ") + n;
  EXPECT_EQ(names, GRAPHSHARD_FAULTS_GLOO_STEPS);
}

}  // namespace
}  // namespace graphshard::props
