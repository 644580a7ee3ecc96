// Test binary for real Gloo processes, started W times by `graphshard launch -n W -- <this>`.
// Registers the replay variant of every GRAPHSHARD_PROPERTY (Suite.NameOverGloo) and runs
// those (the GlooFaults suite runs only when named by --gtest_filter, one launch per test). Any
// failed assertion ends this process at once: the launcher then stops the other ranks, so a failure
// never leaves ranks waiting in mismatched collectives.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include <gtest/gtest.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "graphshard/launch.h"
#include "harness.h"

namespace graphshard::props {

std::chrono::milliseconds gloo_timeout();

void survivors_checked(int survivors) {
  // A client of the store rank 0 hosts (communicator_from_env met the ranks through it).
  const EnvConfig c = env_config();
  const auto limit = gloo_timeout() + std::chrono::seconds(5);
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(c.master_port);
  so.isServer = false;
  so.timeout = limit;
  auto store = c10::make_intrusive<c10d::TCPStore>(c.master_addr, so);
  const std::string key = "graphshard_props/survivors_checked";
  store->add(key, 1);
  if (c.rank != 0) return;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (store->add(key, 0) < survivors && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

namespace {

class ExitOnFailure : public testing::EmptyTestEventListener {
  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %s] FAILED at %s:%d\n%s\n", std::getenv("RANK"),
                 result.file_name() ? result.file_name() : "?", result.line_number(),
                 result.message());
    std::fflush(stderr);
    std::fflush(stdout);
    std::_Exit(1);
  }
};

class ReplayTest : public testing::Test {
 public:
  explicit ReplayTest(std::function<void()> run) : run_(std::move(run)) {}
  void TestBody() override { run_(); }

 private:
  std::function<void()> run_;
};

}  // namespace

std::chrono::milliseconds gloo_timeout() {
  const char* v = std::getenv("GRAPHSHARD_GLOO_TIMEOUT_MS");
  return std::chrono::milliseconds(v && *v ? std::atol(v) : 60000);
}

}  // namespace graphshard::props

int main(int argc, char** argv) {
  using namespace graphshard;
  testing::InitGoogleTest(&argc, argv);
  if (!launched_by_env()) {
    std::fprintf(stderr, "run me under the launcher: graphshard launch -n W -- %s\n", argv[0]);
    return 2;
  }
  props::set_gloo_comm(communicator_from_env("gloo", props::gloo_timeout()));
  const int rank = props::gloo_comm()->rank();
  for (const auto& p : props::property_registry()) {
    auto run = p.run_gloo;
    testing::RegisterTest(p.suite.c_str(), (p.name + "OverGloo").c_str(), nullptr, nullptr,
                          __FILE__, __LINE__,
                          [run]() -> testing::Test* { return new props::ReplayTest(run); });
  }
  if (GTEST_FLAG_GET(filter) == "*") GTEST_FLAG_SET(filter, "*OverGloo:GlooCheckedMode.*:GlooEvenCounts.*");
  // Only rank 0 prints the per-test progress; every rank still reports failures.
  auto& listeners = testing::UnitTest::GetInstance()->listeners();
  if (rank != 0) delete listeners.Release(listeners.default_result_printer());
  listeners.Append(new props::ExitOnFailure);
  const int rc = RUN_ALL_TESTS();
  try {
    props::gloo_comm()->barrier();  // nobody leaves while a peer may still need it
  } catch (const std::exception& e) {
    // Expected after the fault tests, which break the world on purpose.
    std::fprintf(stderr, "[rank %d] final barrier: %s\n", rank, e.what());
  }
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(rc);  // skip global destructors: a peer-less Gloo context may block in teardown
}
