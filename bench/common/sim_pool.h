// W simulated ranks kept alive across benchmark iterations: run(job) executes job(comm) on every
// rank thread and returns when all are done, so an iteration costs the collective, not thread
// creation.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "sim.h"

namespace graphshard::study {

class SimPool {
 public:
  // timeout: the simulated world's, for every collective of every job.
  explicit SimPool(int world_size,
                   std::chrono::milliseconds timeout = std::chrono::minutes(5));
  ~SimPool();
  SimPool(const SimPool&) = delete;
  SimPool& operator=(const SimPool&) = delete;
  int size() const { return static_cast<int>(threads_.size()); }
  // Runs job on every rank; rethrows the first rank's error after all have finished.
  void run(const std::function<void(const CommPtr&)>& job);
  const std::shared_ptr<sim::SimWorld>& world() const { return world_; }

 private:
  std::shared_ptr<sim::SimWorld> world_;
  std::vector<std::thread> threads_;
  std::mutex m_;
  std::condition_variable cv_;
  const std::function<void(const CommPtr&)>* job_ = nullptr;
  uint64_t generation_ = 0;
  int done_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace graphshard::study
