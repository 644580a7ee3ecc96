// SimCommunicator: W ranks as W threads of one process sharing a SimWorld.
//
// Used by the property tests (every multi-rank property runs here with shrinking) and by the
// scaling studies (the traffic ledger counts what each rank would send). Sums are taken in
// rank order, so every rank gets a bitwise-identical result that the reference reproduces.
//
// Failure model: a rank that throws (or is killed by fault injection) marks the world broken;
// every rank blocked in, or later entering, a collective raises CommError naming the failed
// ranks that are root causes (a rank that ended with a CommError is a consequence). A rank that does not arrive within the timeout makes the waiting ranks raise
// CommTimeout naming the missing ranks. Nobody waits forever.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "graphshard/comm.h"

namespace graphshard::sim {

// Bytes a collective would move between ranks. All-gather, reduce-scatter and all-to-all are
// recorded as the point-to-point messages they consist of (self-messages excluded). All-reduce
// is recorded as a ring all-reduce sends it: 2(W-1)/W of the buffer from each rank to its
// successor.
class TrafficLedger {
 public:
  struct Key {
    std::string op;
    int src, dst;
    bool operator<(const Key& o) const {
      return std::tie(op, src, dst) < std::tie(o.op, o.src, o.dst);
    }
  };
  void add(const std::string& op, int src, int dst, int64_t bytes);
  void clear();
  const std::map<Key, int64_t>& entries() const { return bytes_; }
  int64_t bytes_sent(int src, const std::string& op = "") const;      // op "" = all ops
  int64_t bytes_received(int dst, const std::string& op = "") const;  // op "" = all ops
  int64_t total_bytes(const std::string& op = "") const;

 private:
  std::map<Key, int64_t> bytes_;
};

// Thrown inside a rank's thread when fault injection kills it.
class RankKilled : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Thrown inside a rank's thread when fault injection makes it fail.
class InjectedFault : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class SimWorld : public std::enable_shared_from_this<SimWorld> {
 public:
  static std::shared_ptr<SimWorld> create(
      int size, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  int size() const { return size_; }
  std::chrono::milliseconds timeout() const { return timeout_; }
  CommPtr communicator(int rank);

  // Fault injection (set before the ranks run). op_index counts that rank's collectives from 0.
  void delay(int rank, int64_t op_index, std::chrono::milliseconds d);
  void fail_at(int rank, int64_t op_index);  // throws InjectedFault before that collective
  void kill_at(int rank, int64_t op_index);  // throws RankKilled before that collective

  // Marks a rank as failed: every rank in or entering a collective raises CommError. A `cause`
  // is blamed in those errors' peers(); a rank that failed only because another one had (it
  // ended with a CommError) is not (comm.h, "Who is blamed").
  void mark_failed(int rank, const std::string& why, bool cause = true);

  TrafficLedger ledger() const;
  void clear_ledger();
  // Number of collectives each rank has entered.
  std::vector<int64_t> op_counts() const;

 private:
  friend class SimCommunicator;
  SimWorld(int size, std::chrono::milliseconds timeout);

  struct Slot {
    std::string op;
    const void* payload = nullptr;
  };
  struct Fault {
    enum Kind { kDelay, kFail, kKill } kind;
    std::chrono::milliseconds delay{0};
  };

  // Phase barrier: all ranks arrive, or CommError/CommTimeout.
  void wait_all(int rank, const std::string& op);
  // Called at the start of a collective: counts it, applies faults, deposits the slot, and
  // waits for everyone; checks that all ranks are in the same operation.
  void enter(int rank, const std::string& op, const void* payload);
  const void* payload(int rank, const std::string& op, int peer) const;
  void record(const std::string& op, int src, int dst, int64_t bytes);
  [[noreturn]] void throw_broken(int rank, const std::string& op);

  const int size_;
  const std::chrono::milliseconds timeout_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  uint64_t generation_ = 0;
  int arrived_ = 0;
  std::vector<char> arrived_mask_;
  std::vector<Slot> slots_;
  std::vector<int64_t> op_count_;
  std::map<std::pair<int, int64_t>, Fault> faults_;
  std::string broken_;
  std::vector<int> failed_ranks_;
  TrafficLedger ledger_;
};

struct RankOutcome {
  bool ok = true;
  bool killed = false;  // ended by kill_at
  std::string error;    // what() of the exception, if any
  std::exception_ptr exception;
  std::chrono::milliseconds elapsed{0};
};

// Runs fn(comm) on world->size() threads and returns each rank's outcome. A rank that throws
// is marked failed so the others stop waiting for it.
std::vector<RankOutcome> run_ranks_collect(const std::shared_ptr<SimWorld>& world,
                                           const std::function<void(const CommPtr&)>& fn);

// Runs fn on W fresh simulated ranks; rethrows the first failure in time order (the root cause,
// not the peers' reactions to it) after every thread has ended.
void run_ranks(int world_size, const std::function<void(const CommPtr&)>& fn,
               std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace graphshard::sim
