#include "harness.h"

#include <cstdlib>

#include <ATen/ATen.h>

#include "sim.h"

namespace graphshard::props {

void on_sim_ranks(int world_size, const std::function<void(const CommPtr&)>& body) {
  sim::run_ranks(world_size, body, std::chrono::seconds(60));
}

namespace {
CommPtr& gloo_slot() {
  static CommPtr comm;
  return comm;
}
}  // namespace

CommPtr gloo_comm() { return gloo_slot(); }
void set_gloo_comm(CommPtr comm) { gloo_slot() = std::move(comm); }
void drop_gloo_comm() { gloo_slot().reset(); }

std::vector<RegisteredProperty>& property_registry() {
  static std::vector<RegisteredProperty> registry;
  return registry;
}

int gloo_cases() {
  const char* v = std::getenv("GRAPHSHARD_GLOO_CASES");
  return v && *v ? std::max(1, std::atoi(v)) : 12;
}

namespace detail {

uint64_t base_seed_or_env(uint64_t base_seed) {
  const char* v = std::getenv("GRAPHSHARD_SEED");
  return v && *v ? std::strtoull(v, nullptr, 10) : base_seed;
}

void agree_or_throw(const CommPtr& comm, const std::string& property, uint64_t seed, int size,
                    const std::string& local_error) {
  at::Tensor flag = at::zeros({comm->size()}, at::kLong);
  flag[comm->rank()] = local_error.empty() ? 0 : 1;
  comm->all_reduce_sum(flag);
  if (flag.sum().item<int64_t>() == 0) return;
  std::string failed;
  for (int q = 0; q < comm->size(); ++q)
    if (flag[q].item<int64_t>()) failed += (failed.empty() ? "" : ", ") + std::to_string(q);
  throw std::runtime_error(
      property + " failed over Gloo (W=" + std::to_string(comm->size()) + ") on ranks [" + failed +
      "] for seed " + std::to_string(seed) + ", size " + std::to_string(size) +
      (local_error.empty() ? std::string() : "; this rank: " + local_error) +
      "\nreproduce on simulated ranks: GRAPHSHARD_REPLAY='" + property + " " +
      std::to_string(comm->size()) + " " + std::to_string(seed) + " " + std::to_string(size) +
      "' ctest -R Replay --output-on-failure");
}

}  // namespace detail
}  // namespace graphshard::props
