#include "sim_pool.h"

namespace graphshard::study {

SimPool::SimPool(int world_size, std::chrono::milliseconds timeout)
    : world_(sim::SimWorld::create(world_size, timeout)) {
  for (int r = 0; r < world_size; ++r) {
    threads_.emplace_back([this, r] {
      const CommPtr comm = world_->communicator(r);
      uint64_t seen = 0;
      for (;;) {
        const std::function<void(const CommPtr&)>* job;
        {
          std::unique_lock<std::mutex> lk(m_);
          cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
          if (stop_) return;
          seen = generation_;
          job = job_;
        }
        std::exception_ptr err;
        try {
          (*job)(comm);
        } catch (...) {
          err = std::current_exception();
          world_->mark_failed(r, "benchmark job failed");
        }
        std::lock_guard<std::mutex> lk(m_);
        if (err && !error_) error_ = err;
        if (++done_ == size()) cv_.notify_all();
      }
    });
  }
}

SimPool::~SimPool() {
  {
    std::lock_guard<std::mutex> lk(m_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void SimPool::run(const std::function<void(const CommPtr&)>& job) {
  std::unique_lock<std::mutex> lk(m_);
  job_ = &job;
  done_ = 0;
  error_ = nullptr;
  ++generation_;
  cv_.notify_all();
  cv_.wait(lk, [&] { return done_ == size(); });
  if (error_) std::rethrow_exception(error_);
}

}  // namespace graphshard::study
