// Local launcher: W processes on loopback with torchrun's variables. Every argument and the
// environment are prepared before fork(), so the child only calls async-signal-safe functions
// before exec. Children die with the launcher (PR_SET_PDEATHSIG), and once one fails the others
// get a grace period and are then killed: no test can hang on a lost peer. OMP_NUM_THREADS
// defaults to cores / W, as torchrun does. The launcher hosts the ranks' TCPStore (host_store).
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "graphshard/launch.h"

extern char** environ;

namespace graphshard {
namespace {

// The ranks' store, hosted here as torchrun's agent hosts it: bound before any rank starts (port
// 0 takes a free port atomically; a port found free and then bound by rank 0 could be taken in
// between, by another test's connection, which failed a stress run with EADDRINUSE), and alive
// until every rank has exited, so a rank that reads the blames of a failure never finds it gone.
c10::intrusive_ptr<c10d::TCPStore> host_store(const LaunchOptions& o) {
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(o.master_port);
  so.isServer = true;
  so.waitWorkers = false;
  try {
    return c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "graphshard::launch_local: could not host the store at ", o.master_addr, ":",
                o.master_port, ": ", e.what());
  }
}

std::vector<std::string> child_env(int rank, const LaunchOptions& o, int port) {
  const char* ours[] = {"RANK=",
                        "WORLD_SIZE=",
                        "LOCAL_RANK=",
                        "LOCAL_WORLD_SIZE=",
                        "MASTER_ADDR=",
                        "MASTER_PORT=",
                        "TORCHELASTIC_USE_AGENT_STORE="};
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    bool replaced = false;
    for (const char* p : ours) replaced = replaced || std::strncmp(*e, p, std::strlen(p)) == 0;
    if (!replaced) env.emplace_back(*e);
  }
  env.push_back("RANK=" + std::to_string(rank));
  env.push_back("WORLD_SIZE=" + std::to_string(o.world_size));
  env.push_back("LOCAL_RANK=" + std::to_string(rank));
  env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(o.world_size));
  env.push_back("MASTER_ADDR=" + o.master_addr);
  env.push_back("MASTER_PORT=" + std::to_string(port));
  // Every rank, rank 0 included, is a client of the launcher's store (torch's env:// rendezvous
  // and communicator_from_env read this as torchrun sets it).
  env.push_back("TORCHELASTIC_USE_AGENT_STORE=True");
  // Like torchrun: W processes with a full intra-op thread pool each would oversubscribe the
  // cores (OpenMP threads spin while waiting), so each gets its share unless the user chose.
  if (!std::getenv("OMP_NUM_THREADS")) {
    const long cores = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
    env.push_back("OMP_NUM_THREADS=" + std::to_string(std::max(1L, cores / o.world_size)));
  }
  return env;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace

int launch_local(const std::vector<std::string>& argv, const LaunchOptions& o) {
  TORCH_CHECK_VALUE(!argv.empty(), "graphshard::launch_local: argv: expected a program, got none");
  TORCH_CHECK_VALUE(o.world_size >= 1 && o.world_size <= 1024,
                    "graphshard::launch_local: world_size: expected 1..1024, got ", o.world_size);
  const auto store = host_store(o);
  const int port = store->getPort();
  std::vector<std::string> args = argv;
  std::vector<char*> cargs = c_strings(args);
  std::vector<std::vector<std::string>> envs;
  std::vector<std::vector<char*>> cenvs;
  for (int r = 0; r < o.world_size; ++r) envs.push_back(child_env(r, o, port));
  for (auto& e : envs) cenvs.push_back(c_strings(e));

  const pid_t parent = ::getpid();
  std::vector<pid_t> pids(o.world_size, -1);
  for (int r = 0; r < o.world_size; ++r) {
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::execvpe(cargs[0], cargs.data(), cenvs[r].data());
      ::_exit(127);
    }
    if (pid < 0) {
      for (pid_t p : pids)
        if (p > 0) ::kill(p, SIGKILL);
      TORCH_CHECK(false, "graphshard::launch_local: fork failed: ", std::strerror(errno));
    }
    pids[r] = pid;
  }

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  std::optional<clock::time_point> kill_at;
  int result = 0, alive = o.world_size;
  std::vector<char> done(o.world_size, 0);
  while (alive > 0) {
    bool reaped = false;
    for (int r = 0; r < o.world_size; ++r) {
      if (done[r]) continue;
      int status = 0;
      const pid_t got = ::waitpid(pids[r], &status, WNOHANG);
      if (got != pids[r]) continue;
      done[r] = 1;
      --alive;
      reaped = true;
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (code != 0 && result == 0) {
        result = code;
        kill_at = clock::now() + o.grace;
        std::fprintf(stderr,
                     "graphshard launch: rank %d exited with code %d; the other ranks "
                     "have %lld ms to finish\n",
                     r, code, static_cast<long long>(o.grace.count()));
      }
    }
    const auto now = clock::now();
    const bool overdue = o.timeout.count() > 0 && now - start > o.timeout;
    if (overdue && result == 0) {
      result = 124;
      std::fprintf(stderr, "graphshard launch: timed out after %lld ms; killing all ranks\n",
                   static_cast<long long>(o.timeout.count()));
    }
    if (overdue || (kill_at && now > *kill_at)) {
      for (int r = 0; r < o.world_size; ++r)
        if (!done[r]) ::kill(pids[r], SIGKILL);
    }
    if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return result;
}

}  // namespace graphshard
