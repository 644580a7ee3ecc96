// Failures of the NCCL engine (nccl_internal.h): settling what NCCL said of each call,
// recording the first failure and aborting the NCCL communicator, and the watchdog thread that
// retires completed operations and catches asynchronous errors and timeouts.
#include <string>
#include <thread>

#include <c10/cuda/CUDAException.h>

#include "nccl_internal.h"

namespace graphshard::detail {

// A .cpu() of a result returns once the kernels have stopped, also when they stopped because
// NCCL failed or was aborted: ask NCCL now.
void NcclCommunicator::check_completed() {
  ncclResult_t state = ncclSuccess;
  const ncclResult_t asked = call([&] { return ncclCommGetAsyncError(comm_, &state); });
  if (asked != kAborted && asked != ncclSuccess) {
    fail("check_completed", ncclGetErrorString(asked), false);
  } else if (asked != kAborted && state != ncclSuccess && state != ncclInProgress) {
    fail("check_completed", ncclGetErrorString(state), false);
  }
  std::lock_guard<std::mutex> lock(mu_);
  raise_if_failed();
}

// The result of the last NCCL call of an operation (a collective, a group, init, finalize):
// on a non-blocking communicator it may be ncclInProgress while the work is being
// enqueued, and neither the communicator nor the stream may be used until it has settled.
void NcclCommunicator::enqueued(const char* op, ncclResult_t r, Clock::time_point deadline) {
  if (r == ncclInProgress) {
    settle(op, deadline == Clock::time_point{} ? Clock::now() + timeout_ : deadline);
  } else if (r != ncclSuccess) {
    fail(op, ncclGetErrorString(r), false);  // after an abort: the first failure stands
  }
  std::lock_guard<std::mutex> lock(mu_);
  raise_if_failed();
}

// Waits (bounded by the timeout) until a non-blocking init/finalize/group has completed;
// each poll holds comm_mu_, the sleeps do not.
void NcclCommunicator::settle(const char* op, Clock::time_point deadline) {
  for (;;) {
    ncclResult_t state = ncclInProgress;
    const ncclResult_t asked = call([&] { return ncclCommGetAsyncError(comm_, &state); });
    if (asked == kAborted) return;  // whoever aborted recorded the failure
    if (asked != ncclSuccess) state = asked;
    if (state == ncclSuccess) return;
    if (state != ncclInProgress) return fail(op, ncclGetErrorString(state), false);
    if (Clock::now() > deadline) return fail(op, "did not complete", true);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

bool NcclCommunicator::failed() {
  std::lock_guard<std::mutex> lock(mu_);
  return !failure_.empty();
}

// After the NCCL calls of one operation: its completion event joins the watch list.
void NcclCommunicator::issued(const char* op, cudaStream_t stream) {
  cudaEvent_t done;
  C10_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
  C10_CUDA_CHECK(cudaEventRecord(done, stream));
  {
    std::lock_guard<std::mutex> lock(mu_);
    in_flight_.push_back({op, done, Clock::now()});
  }
  wake_.notify_all();
}

// Records the first failure and aborts the NCCL communicator, once. Takes comm_mu_, then
// mu_ (the one lock order), and is never called with either held.
void NcclCommunicator::fail(const std::string& op, const std::string& what, bool timed_out) {
  std::lock_guard<std::mutex> comm_lock(comm_mu_);
  std::string why = what;
  if (comm_ && !aborted_) {
    const char* last = ncclGetLastError(comm_);
    if (last && *last) why += std::string(": ") + last;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure_.empty()) return;
    failure_op_ = op;
    timed_out_ = timed_out;
    failure_ = "graphshard::nccl " + op + " on rank " + std::to_string(rank_) + " of " +
               std::to_string(size_) + " failed: " + why +
               (timed_out ? " (timeout " + std::to_string(timeout_.count()) + " ms)" : "") +
               "; the communicator is aborted";
  }
  // Outside mu_: an abort can be slow, and enter(), failed() and the barrier's wait must not
  // block behind it.
  if (comm_ && !aborted_) {
    ncclCommAbort(comm_);
    aborted_ = true;
  }
}

void NcclCommunicator::raise_if_failed() const {
  if (failure_.empty()) return;
  if (timed_out_) throw CommTimeout(failure_op_, rank_, {}, failure_);
  throw CommError(failure_op_, rank_, {}, failure_);
}

// The watchdog: retires completed operations; fails the communicator on an asynchronous
// NCCL error or on an operation older than the timeout.
void NcclCommunicator::watch() {
  cudaSetDevice(device_);
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    wake_.wait_for(lock, std::chrono::milliseconds(20));
    cudaError_t done = cudaSuccess;
    while (!in_flight_.empty() && (done = cudaEventQuery(in_flight_.front().done)) == cudaSuccess) {
      cudaEventDestroy(in_flight_.front().done);
      in_flight_.pop_front();
      // The next operation's clock starts when this one is seen done (at most a poll late),
      // not when it was issued: work queued behind a long one gets its own timeout.
      if (!in_flight_.empty()) in_flight_.front().since = Clock::now();
    }
    if (in_flight_.empty() || !failure_.empty()) continue;
    const InFlight oldest = in_flight_.front();
    lock.unlock();
    ncclResult_t state = ncclSuccess;
    const ncclResult_t asked = call([&] { return ncclCommGetAsyncError(comm_, &state); });
    if (done != cudaErrorNotReady) {  // a CUDA error, not a wait: say so now
      fail(oldest.op, std::string("CUDA: ") + cudaGetErrorString(done), false);
    } else if (asked != kAborted && state != ncclSuccess && state != ncclInProgress) {
      fail(oldest.op, ncclGetErrorString(state), false);
    } else if (Clock::now() - oldest.since > timeout_) {
      fail(oldest.op, "did not complete", true);
    }
    lock.lock();
  }
  for (const InFlight& f : in_flight_) cudaEventDestroy(f.done);
  in_flight_.clear();
}

}  // namespace graphshard::detail
