#include <algorithm>
#include <sstream>
#include <thread>

#include <ATen/ATen.h>

#include "sim.h"

namespace graphshard::sim {
namespace {

std::string ranks_str(const std::vector<int>& ranks) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < ranks.size(); ++i) os << (i ? ", " : "") << ranks[i];
  os << ']';
  return os.str();
}

}  // namespace

void TrafficLedger::add(const std::string& op, int src, int dst, int64_t bytes) {
  if (bytes > 0) bytes_[{op, src, dst}] += bytes;
}
void TrafficLedger::clear() {
  bytes_.clear();
}

int64_t TrafficLedger::bytes_sent(int src, const std::string& op) const {
  int64_t s = 0;
  for (const auto& [k, b] : bytes_)
    if (k.src == src && (op.empty() || k.op == op)) s += b;
  return s;
}
int64_t TrafficLedger::bytes_received(int dst, const std::string& op) const {
  int64_t s = 0;
  for (const auto& [k, b] : bytes_)
    if (k.dst == dst && (op.empty() || k.op == op)) s += b;
  return s;
}
int64_t TrafficLedger::total_bytes(const std::string& op) const {
  int64_t s = 0;
  for (const auto& [k, b] : bytes_)
    if (op.empty() || k.op == op) s += b;
  return s;
}

std::shared_ptr<SimWorld> SimWorld::create(int size, std::chrono::milliseconds timeout) {
  TORCH_CHECK_VALUE(size >= 1, "graphshard::sim::SimWorld: size: expected >= 1, got ", size);
  TORCH_CHECK_VALUE(timeout.count() > 0,
                    "graphshard::sim::SimWorld: timeout: expected > 0 ms, got ", timeout.count());
  return std::shared_ptr<SimWorld>(new SimWorld(size, timeout));
}

SimWorld::SimWorld(int size, std::chrono::milliseconds timeout)
    : size_(size), timeout_(timeout), arrived_mask_(size, 0), slots_(size), op_count_(size, 0) {}

void SimWorld::delay(int rank, int64_t op_index, std::chrono::milliseconds d) {
  std::lock_guard<std::mutex> lk(mutex_);
  faults_[{rank, op_index}] = Fault{Fault::kDelay, d};
}
void SimWorld::fail_at(int rank, int64_t op_index) {
  std::lock_guard<std::mutex> lk(mutex_);
  faults_[{rank, op_index}] = Fault{Fault::kFail, {}};
}
void SimWorld::kill_at(int rank, int64_t op_index) {
  std::lock_guard<std::mutex> lk(mutex_);
  faults_[{rank, op_index}] = Fault{Fault::kKill, {}};
}

void SimWorld::mark_failed(int rank, const std::string& why, bool cause) {
  std::lock_guard<std::mutex> lk(mutex_);
  if (cause &&
      std::find(failed_ranks_.begin(), failed_ranks_.end(), rank) == failed_ranks_.end()) {
    failed_ranks_.push_back(rank);
  }
  if (broken_.empty()) broken_ = "rank " + std::to_string(rank) + " failed: " + why;
  cv_.notify_all();
}

TrafficLedger SimWorld::ledger() const {
  std::lock_guard<std::mutex> lk(mutex_);
  return ledger_;
}
void SimWorld::clear_ledger() {
  std::lock_guard<std::mutex> lk(mutex_);
  ledger_.clear();
}
std::vector<int64_t> SimWorld::op_counts() const {
  std::lock_guard<std::mutex> lk(mutex_);
  return op_count_;
}

void SimWorld::record(const std::string& op, int src, int dst, int64_t bytes) {
  if (src == dst || bytes <= 0) return;
  std::lock_guard<std::mutex> lk(mutex_);
  ledger_.add(op, src, dst, bytes);
}

void SimWorld::throw_broken(int rank, const std::string& op) {
  throw CommError(op, rank, failed_ranks_,
                  "graphshard::sim " + op + " on rank " + std::to_string(rank) + " of " +
                      std::to_string(size_) + " aborted: " + broken_);
}

void SimWorld::wait_all(int rank, const std::string& op) {
  std::unique_lock<std::mutex> lk(mutex_);
  if (!broken_.empty()) throw_broken(rank, op);
  const uint64_t gen = generation_;
  arrived_mask_[rank] = 1;
  if (++arrived_ == size_) {
    arrived_ = 0;
    std::fill(arrived_mask_.begin(), arrived_mask_.end(), 0);
    ++generation_;
    cv_.notify_all();
    return;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  while (generation_ == gen) {
    if (!broken_.empty()) throw_broken(rank, op);
    if (cv_.wait_until(lk, deadline) == std::cv_status::timeout && generation_ == gen &&
        broken_.empty()) {
      std::vector<int> missing;
      for (int q = 0; q < size_; ++q)
        if (!arrived_mask_[q]) missing.push_back(q);
      const std::string msg = "graphshard::sim " + op + " on rank " + std::to_string(rank) +
                              " of " + std::to_string(size_) + " timed out after " +
                              std::to_string(timeout_.count()) + " ms waiting for ranks " +
                              ranks_str(missing);
      broken_ = msg;  // the world is unusable now: wake everyone else with the same story
      failed_ranks_ = missing;
      cv_.notify_all();
      throw CommTimeout(op, rank, missing, msg);
    }
  }
}

void SimWorld::enter(int rank, const std::string& op, const void* payload) {
  std::optional<Fault> fault;
  int64_t index;
  {
    std::lock_guard<std::mutex> lk(mutex_);
    index = op_count_[rank]++;
    auto it = faults_.find({rank, index});
    if (it != faults_.end()) fault = it->second;
    slots_[rank] = Slot{op, payload};
  }
  if (fault) {
    const std::string where = "rank " + std::to_string(rank) + " before collective #" +
                              std::to_string(index) + " (" + op + ")";
    switch (fault->kind) {
      case Fault::kDelay:
        std::this_thread::sleep_for(fault->delay);
        break;
      case Fault::kFail:
        throw InjectedFault("graphshard::sim: injected failure on " + where);
      case Fault::kKill:
        throw RankKilled("graphshard::sim: injected kill of " + where);
    }
  }
  wait_all(rank, op);
  // Every rank sees every slot, so a mismatch is detected by all ranks alike.
  for (int q = 0; q < size_; ++q) {
    if (slots_[q].op != op) {
      const std::string msg = "graphshard::sim: ranks disagree on the collective: rank " +
                              std::to_string(rank) + " is in " + op + ", rank " +
                              std::to_string(q) + " is in " + slots_[q].op;
      throw CommError(op, rank, {q}, msg);
    }
  }
}

const void* SimWorld::payload(int, const std::string&, int peer) const {
  return slots_[peer].payload;
}

std::vector<RankOutcome> run_ranks_collect(const std::shared_ptr<SimWorld>& world,
                                           const std::function<void(const CommPtr&)>& fn) {
  const int w = world->size();
  std::vector<RankOutcome> out(w);
  std::vector<std::thread> threads;
  threads.reserve(w);
  for (int r = 0; r < w; ++r) {
    threads.emplace_back([&, r] {
      const auto t0 = std::chrono::steady_clock::now();
      try {
        fn(world->communicator(r));
      } catch (const CommError& e) {
        // A consequence of another rank's failure (comm.h, "Who is blamed"): the world is
        // broken, but this rank is not a root cause.
        out[r].ok = false;
        out[r].error = e.what();
        out[r].exception = std::current_exception();
        world->mark_failed(r, e.what(), /*cause=*/false);
      } catch (const RankKilled& e) {
        out[r].ok = false;
        out[r].killed = true;
        out[r].error = e.what();
        world->mark_failed(r, "killed");
      } catch (const std::exception& e) {
        out[r].ok = false;
        out[r].error = e.what();
        out[r].exception = std::current_exception();
        world->mark_failed(r, e.what());
      } catch (...) {
        out[r].ok = false;
        out[r].error = "unknown exception";
        out[r].exception = std::current_exception();
        world->mark_failed(r, "unknown exception");
      }
      out[r].elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - t0);
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

void run_ranks(int world_size, const std::function<void(const CommPtr&)>& fn,
               std::chrono::milliseconds timeout) {
  auto world = SimWorld::create(world_size, timeout);
  std::mutex m;
  std::exception_ptr first;
  std::vector<RankOutcome> outcomes = run_ranks_collect(world, [&](const CommPtr& comm) {
    try {
      fn(comm);
    } catch (...) {
      std::lock_guard<std::mutex> lk(m);
      if (!first) first = std::current_exception();
      throw;
    }
  });
  if (first) std::rethrow_exception(first);
}

}  // namespace graphshard::sim
