// Creating communicators for processes: torchrun-style environment variables (so torchrun,
// srun and mpirun launches work across nodes) and a local launcher that starts W processes on
// loopback for tests and studies.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "graphshard/comm.h"

namespace graphshard {

struct EnvConfig {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

// Reads RANK, WORLD_SIZE, LOCAL_RANK (default RANK), MASTER_ADDR, MASTER_PORT. Error naming
// the variable when one is missing or malformed.
EnvConfig env_config();

// True when RANK and WORLD_SIZE are set.
bool launched_by_env();

// Meets the other ranks through a c10d TCPStore at MASTER_ADDR:MASTER_PORT (rank 0 hosts it,
// unless TORCHELASTIC_USE_AGENT_STORE=True says a launcher does, as torchrun and launch_local do)
// and creates the engine: "gloo" (CPU tensors; GLOO_SOCKET_IFNAME picks the interface) or
// "nccl" (CUDA builds; device LOCAL_RANK). `timeout` bounds the rendezvous and every collective.
CommPtr communicator_from_env(const std::string& engine = "gloo",
                              std::chrono::milliseconds timeout = std::chrono::seconds(300));

struct LaunchOptions {
  int world_size = 2;
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  // 0: a free port (the launcher hosts the store there, see launch_local)
  // After the first process fails, the others get this long to finish before SIGKILL.
  std::chrono::milliseconds grace{10000};
  // Kill everything after this long (0 = no limit).
  std::chrono::milliseconds timeout{0};
};

// Runs `argv` as world_size processes with the torchrun variables set; waits for all. Like
// torchrun's agent, the launcher hosts the ranks' TCPStore (bound before any rank starts, alive
// until all have exited) and sets TORCHELASTIC_USE_AGENT_STORE=True, so every rank is a client.
// Returns 0 when every process exits 0, else the first failure's code (128 + signal for a
// signal). No process outlives the call.
int launch_local(const std::vector<std::string>& argv, const LaunchOptions& options);

}  // namespace graphshard
