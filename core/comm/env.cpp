// Rendezvous through torchrun's variables and a c10d TCPStore, then the engine.
#include <cstdlib>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "graphshard/c10d.h"
#include "graphshard/launch.h"
#include "graphshard/nccl.h"

namespace graphshard {
namespace {

int env_int(const char* name, std::optional<int> fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) {
    TORCH_CHECK_VALUE(fallback.has_value(), "graphshard::env_config: environment variable ", name,
                      ": expected an integer (set by torchrun/srun or graphshard launch), got ",
                      "nothing");
    return *fallback;
  }
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  TORCH_CHECK_VALUE(end && *end == '\0' && x >= 0 && x <= (1 << 30),
                    "graphshard::env_config: environment variable ", name,
                    ": expected a non-negative integer, got '", v, "'");
  return static_cast<int>(x);
}

}  // namespace

bool launched_by_env() {
  return std::getenv("RANK") && std::getenv("WORLD_SIZE");
}

EnvConfig env_config() {
  EnvConfig c;
  c.rank = env_int("RANK", std::nullopt);
  c.world_size = env_int("WORLD_SIZE", std::nullopt);
  c.local_rank = env_int("LOCAL_RANK", c.rank);
  TORCH_CHECK_VALUE(c.world_size >= 1 && c.rank < c.world_size,
                    "graphshard::env_config: RANK: expected a rank in [0, WORLD_SIZE=",
                    c.world_size, "), got ", c.rank);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) c.master_addr = a;
  c.master_port = env_int("MASTER_PORT", 29500);
  TORCH_CHECK_VALUE(c.master_port > 0 && c.master_port < 65536,
                    "graphshard::env_config: MASTER_PORT: expected a port in [1, 65535], got ",
                    c.master_port);
  return c;
}

CommPtr communicator_from_env(const std::string& engine, std::chrono::milliseconds timeout) {
  const EnvConfig c = env_config();
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(c.master_port);
  // Rank 0 hosts the store, unless a launcher does (torchrun's agent, graphshard launch).
  const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  so.isServer = c.rank == 0 && !(agent && std::string(agent) == "True");
  so.numWorkers = c.world_size;
  so.waitWorkers = true;
  so.timeout = timeout;
  auto store = c10::make_intrusive<c10d::TCPStore>(c.master_addr, so);
  if (engine == "gloo") {
    auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
    if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (c.master_addr == "127.0.0.1" || c.master_addr == "localhost") {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    } else {
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    auto backend = c10::make_intrusive<c10d::ProcessGroupGloo>(store, c.rank, c.world_size, opts);
    return make_c10d_communicator(backend, timeout, store);
  }
  // One GPU per process: the LOCAL_RANK-th of this node's devices.
  if (engine == "nccl") {
    return make_nccl_communicator(store, c.rank, c.world_size, c.local_rank, timeout);
  }
  TORCH_CHECK_VALUE(false, "graphshard::communicator_from_env: engine: expected 'gloo' or 'nccl'",
                    nccl_engine_built() ? "" : " (this build has no NCCL engine)", ", got '",
                    engine, "' (rank ", c.rank, ")");
}

}  // namespace graphshard
