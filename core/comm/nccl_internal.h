// The class of the native NCCL engine (graphshard/nccl.h), shared by the files that implement
// it. Internal to core/comm; compiled only with GRAPHSHARD_CUDA and NCCL.
//
//   nccl_init.cpp          rendezvous through the store, NCCL's init, the watchdog's start;
//                          finalize on destruction; make_nccl_communicator
//   nccl_communicator.cpp  the collectives and the barrier
//   nccl_watchdog.cpp      failures: settling NCCL's results, aborting, the watchdog thread
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <ATen/core/Tensor.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include "graphshard/nccl.h"

namespace graphshard::detail {

using Clock = std::chrono::steady_clock;

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size, int device,
                   std::chrono::milliseconds timeout);
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }
  std::string engine() const override { return "nccl"; }
  at::Device home_device() const override { return at::Device(at::kCUDA, device_); }

  void check_completed() override;

 protected:
  void do_all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                       const std::vector<int64_t>& counts, OwnPiece own) override;
  void do_all_reduce_sum(const at::Tensor& buffer) override;
  void do_all_reduce_sum_into(const at::Tensor& send, const at::Tensor& recv) override;
  void do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                           const std::vector<int64_t>& counts, const at::Tensor& own) override;
  void do_all_to_all_v(const at::Tensor& send, const std::vector<int64_t>& send_counts,
                       const at::Tensor& recv, const std::vector<int64_t>& recv_counts,
                       OwnPiece own) override;
  void do_barrier() override;

 private:
  struct InFlight {
    std::string op;
    cudaEvent_t done;
    Clock::time_point since;
  };

  // nccl_communicator.cpp: what the collectives share.
  cudaStream_t current_stream() const;
  void enter(const char* op, std::initializer_list<at::Tensor> buffers);
  static void copy_async(const at::Tensor& dst, int64_t dst_at, const at::Tensor& src,
                         int64_t src_at, int64_t n, cudaStream_t stream);

  // Every NCCL call on comm_ is made under comm_mu_, by one thread at a time (NCCL's rule),
  // and never after the abort, which frees the communicator. call() and group() return what
  // NCCL said; the caller passes it to enqueued() once the lock is released, because a
  // failure aborts under that same lock.
  static constexpr ncclResult_t kAborted = ncclInvalidUsage;

  template <typename F>
  ncclResult_t call(F&& nccl) {
    std::lock_guard<std::mutex> lock(comm_mu_);
    return aborted_ ? kAborted : nccl();
  }

  // Issue(r) records the first failing result of the calls inside a group; after one fails,
  // the rest of the group is still issued and ended, then the failure is returned.
  using Issue = std::function<void(ncclResult_t)>;

  // One ncclGroupStart ... ncclGroupEnd. The group is always ended, even when a call inside
  // fails: a group left open would defer every later NCCL call of this thread.
  template <typename F>
  ncclResult_t group(F&& calls) {
    std::lock_guard<std::mutex> lock(comm_mu_);
    if (aborted_) return kAborted;
    ncclResult_t first = ncclGroupStart();
    if (first != ncclSuccess) return first;
    const Issue issue = [&](ncclResult_t r) {
      if (first == ncclSuccess && r != ncclInProgress) first = r;
    };
    calls(issue);
    const ncclResult_t end = ncclGroupEnd();
    return first != ncclSuccess ? first : end;
  }

  // nccl_watchdog.cpp: results, failures and the watchdog.
  void enqueued(const char* op, ncclResult_t r, Clock::time_point deadline = {});
  void settle(const char* op, Clock::time_point deadline);
  bool failed();
  void issued(const char* op, cudaStream_t stream);
  void fail(const std::string& op, const std::string& what, bool timed_out);
  void raise_if_failed() const;  // mu_ held
  void watch();

  int rank_, size_, device_;
  std::chrono::milliseconds timeout_;
  ncclComm_t comm_ = nullptr;
  std::mutex comm_mu_;  // every NCCL call on comm_; guards aborted_
  std::mutex mu_;       // failure_, in_flight_, stop_
  std::condition_variable wake_;
  std::deque<InFlight> in_flight_;
  std::thread watchdog_;
  bool aborted_ = false;  // comm_mu_ held
  bool stop_ = false, timed_out_ = false;
  std::string failure_, failure_op_;
};

}  // namespace graphshard::detail
