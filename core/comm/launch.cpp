// Local launcher: W processes on loopback with torchrun's variables. Every argument and the
// environment are prepared before fork(), so the child only calls async-signal-safe functions
// before exec. Children die with the launcher (PR_SET_PDEATHSIG), and once one fails the others
// get a grace period and are then killed: no test can hang on a lost peer. OMP_NUM_THREADS
// defaults to cores / W, as torchrun does.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <c10/util/Exception.h>

#include "graphshard/launch.h"

extern char** environ;

namespace graphshard {
namespace {

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  TORCH_CHECK(fd >= 0, "graphshard::launch_local: socket() failed: ", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  TORCH_CHECK(ok, "graphshard::launch_local: could not find a free port: ", std::strerror(errno));
  return ntohs(addr.sin_port);
}

std::vector<std::string> child_env(int rank, const LaunchOptions& o, int port) {
  const char* ours[] = {
      "RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT="};
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
  const int port = o.master_port > 0 ? o.master_port : free_port();
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
