// Rank faults over real Gloo processes. Each test runs in its own launch (the world is broken
// afterwards on purpose) with a short timeout (GRAPHSHARD_GLOO_TIMEOUT_MS, set by ctest). The
// victim is the last rank; the survivors must raise CommError naming the operation within the
// timeout plus a margin, never hang.
#include <thread>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "graphshard/comm.h"
#include "graphshard/shapes.h"
#include "harness.h"

namespace graphshard::props {

std::chrono::milliseconds gloo_timeout();

namespace {

using clock = std::chrono::steady_clock;

// Runs an uneven all-gather on the survivors and checks how they fail.
void expect_survivors_raise(const CommPtr& comm, const char* what) {
  const int w = comm->size();
  std::vector<int64_t> counts(w);
  for (int q = 0; q < w; ++q) counts[q] = 1000 + q;
  at::Tensor send = at::ones({counts[comm->rank()]});
  at::Tensor recv = at::empty({total(counts)});
  const auto t0 = clock::now();
  try {
    comm->all_gather_v(send, recv, counts);
    // A single collective may complete before the loss is visible; the next one cannot.
    comm->all_reduce_sum(recv);
    FAIL() << "rank " << comm->rank() << ": no error although " << what;
  } catch (const CommError& e) {
    const auto elapsed = clock::now() - t0;
    EXPECT_LE(elapsed, gloo_timeout() + std::chrono::seconds(3))
        << "rank " << comm->rank() << " raised only after "
        << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms";
    const std::string msg = e.what();
    EXPECT_TRUE(msg.find(e.op()) != std::string::npos) << msg;
    EXPECT_TRUE(e.op() == "all_gather_v" || e.op() == "all_reduce_sum") << e.op();
    EXPECT_NE(msg.find("rank " + std::to_string(comm->rank())), std::string::npos) << msg;
    // The root cause alone (comm.h, "Who is blamed"), also when the survivor's first lost peer
    // is the other survivor, gone after raising.
    EXPECT_EQ(e.peers(), std::vector<int>{comm->size() - 1}) << msg;
    std::printf("[rank %d] raised after %lld ms: %s\n", comm->rank(),
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()),
                msg.substr(0, 300).c_str());
  }
  survivors_checked(comm->size() - 1);  // rank 0, the store's host, stays until all have checked
}

TEST(GlooFaults, SurvivorsRaiseWhenARankDies) {
  const CommPtr comm = gloo_comm();
  comm->barrier();
  if (comm->rank() == comm->size() - 1) std::_Exit(0);  // abrupt: no destructors, sockets drop
  expect_survivors_raise(comm, "a rank died");
}

TEST(GlooFaults, SurvivorsRaiseWhenARankThrowsBeforeACollective) {
  CommPtr comm = gloo_comm();
  comm->barrier();
  if (comm->rank() == comm->size() - 1) {
    try {
      throw std::runtime_error("a bad input on this rank only");
    } catch (const std::exception&) {
      // The exception unwinds this rank out of the collective sequence: its communicator is
      // destroyed in an orderly way (connections closed, unlike a death) and it exits.
      comm.reset();
      drop_gloo_comm();
      std::_Exit(0);
    }
  }
  expect_survivors_raise(comm, "a rank threw and never joined");
}

TEST(GlooFaults, SurvivorsRaiseWhenARankStallsPastTheTimeout) {
  const CommPtr comm = gloo_comm();
  comm->barrier();
  if (comm->rank() == comm->size() - 1) {
    std::this_thread::sleep_for(2 * gloo_timeout() + std::chrono::seconds(2));
    std::_Exit(0);
  }
  expect_survivors_raise(comm, "a rank stalled");
}

}  // namespace
}  // namespace graphshard::props
