// Running property bodies on ranks: simulated threads (full RapidCheck with shrinking) or real
// Gloo processes (replay of generated cases from a shared seed).
//
// A property body is `void(const CommPtr& comm)`: it runs once per rank, sees only its rank's
// communicator, and throws (RC_ASSERT or any exception) on failure.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <rapidcheck.h>

#include "graphshard/comm.h"

namespace graphshard::props {

// Runs body on W simulated ranks (fresh world, timeout 60 s); rethrows the root failure.
void on_sim_ranks(int world_size, const std::function<void(const CommPtr&)>& body);

// The communicator of this Gloo test process (created once from the environment by
// gloo_main.cpp); null when the test binary was not started by a launcher.
CommPtr gloo_comm();
// Destroys this process's Gloo communicator (fault tests only).
void drop_gloo_comm();
void set_gloo_comm(CommPtr comm);  // gloo_main.cpp

// Fault tests over Gloo, once a survivor has checked its error (gloo_main.cpp). Rank 0 hosts the
// store that carries the blames (comm.h, "Who is blamed"): had it exited while another survivor
// was still inside its failing collective, that survivor would find the store gone and could
// only blame the peer of its failing transfer, which comm.h allows but the tests do not expect.
// Every survivor counts itself in through the store; rank 0 returns once all `survivors` have
// (or after the Gloo timeout plus 5 s), so the store outlives every check.
void survivors_checked(int survivors);

// Number of cases each replayed property runs over Gloo: GRAPHSHARD_GLOO_CASES (default 12).
int gloo_cases();

// Replays `cases` generated cases over the Gloo communicator. Case i is drawn from
// make_gen(W) with seed base_seed + i (GRAPHSHARD_SEED overrides base_seed) and size
// 10 + 90 i / cases, identically on every rank; body(comm, case) runs on each rank. After each
// case all ranks agree on success; a failure on any rank fails every rank, and the message
// names the property, the seed and the command that reproduces it on simulated ranks.
template <typename Case>
void replay_on_gloo(const std::string& property, const std::function<rc::Gen<Case>(int)>& make_gen,
                    const std::function<void(const CommPtr&, const Case&)>& body,
                    uint64_t base_seed = 20261124);

// Same case replay, but on W simulated ranks (used by the reproduce-a-seed tests).
template <typename Case>
void replay_on_sim(int world_size, uint64_t seed, int size,
                   const std::function<rc::Gen<Case>(int)>& make_gen,
                   const std::function<void(const CommPtr&, const Case&)>& body) {
  const Case c = make_gen(world_size)(rc::Random(seed), size).value();
  on_sim_ranks(world_size, [&](const CommPtr& comm) { body(comm, c); });
}

// ---- One definition, three runners -------------------------------------------------------
// GRAPHSHARD_PROPERTY(Suite, Name, make_gen, body) defines
//   - Suite.Name: a RapidCheck property on W in [1, 8] simulated ranks (shrinking included);
//   - Suite.NameOverGloo: the same body replayed over Gloo processes; registered at run time
//     only by the Gloo test binary (gloo_main.cpp), which the ctest label `gloo` launches;
//   - a replay entry, so a seed printed by a Gloo failure reproduces on simulated ranks.
// make_gen: rc::Gen<Case> (*)(int world_size); body: void (*)(const CommPtr&, const Case&).
struct RegisteredProperty {
  std::string suite, name;
  std::function<void()> run_gloo;
  std::function<void(int, uint64_t, int)> run_sim_replay;
};
std::vector<RegisteredProperty>& property_registry();

template <typename Case>
bool register_property(const char* suite, const char* name, rc::Gen<Case> (*make_gen)(int),
                       void (*body)(const CommPtr&, const Case&)) {
  const std::string full = std::string(suite) + "." + name;
  property_registry().push_back(RegisteredProperty{
      suite, name, [=] { replay_on_gloo<Case>(full, make_gen, body); },
      [=](int w, uint64_t seed, int size) { replay_on_sim<Case>(w, seed, size, make_gen, body); }});
  return true;
}

// GRAPHSHARD_PROPERTY_MIN_W: the same with the simulated world drawn from [min_w, 8]; the Gloo
// replay runs at the launched W, so its body must itself return early below min_w.
#define GRAPHSHARD_PROPERTY_MIN_W(Suite, Name, min_w, make_gen, body)                           \
  RC_GTEST_PROP(Suite, Name, ()) {                                                              \
    const int world_size_ = *rc::gen::inRange(min_w, 9).as("world size");                       \
    const auto case_ = *make_gen(world_size_);                                                  \
    ::graphshard::props::on_sim_ranks(world_size_,                                              \
                                      [&](const ::graphshard::CommPtr& c) { body(c, case_); }); \
  }                                                                                             \
  static const bool Suite##_##Name##_registered_ =                                              \
      ::graphshard::props::register_property(#Suite, #Name, make_gen, body)
#define GRAPHSHARD_PROPERTY(Suite, Name, make_gen, body) \
  GRAPHSHARD_PROPERTY_MIN_W(Suite, Name, 1, make_gen, body)

namespace detail {
uint64_t base_seed_or_env(uint64_t base_seed);
// Agrees on failure across ranks; throws on every rank if any rank failed.
void agree_or_throw(const CommPtr& comm, const std::string& property, uint64_t seed, int size,
                    const std::string& local_error);
}  // namespace detail

template <typename Case>
void replay_on_gloo(const std::string& property, const std::function<rc::Gen<Case>(int)>& make_gen,
                    const std::function<void(const CommPtr&, const Case&)>& body,
                    uint64_t base_seed) {
  const CommPtr comm = gloo_comm();
  if (!comm) throw std::runtime_error("replay_on_gloo: no Gloo communicator in this process");
  const int n = gloo_cases();
  const uint64_t seed0 = detail::base_seed_or_env(base_seed);
  const auto gen = make_gen(comm->size());
  for (int i = 0; i < n; ++i) {
    const uint64_t seed = seed0 + static_cast<uint64_t>(i);
    const int size = 10 + 90 * i / (n > 1 ? n - 1 : 1);
    std::string error;
    try {
      const Case c = gen(rc::Random(seed), size).value();
      body(comm, c);
    } catch (const std::exception& e) {
      error = e.what();
    } catch (...) {
      error = "non-standard exception (RapidCheck assertion)";
    }
    detail::agree_or_throw(comm, property, seed, size, error);
  }
}

}  // namespace graphshard::props
