// The native NCCL engine (graphshard/nccl.h). Compiled only with GRAPHSHARD_CUDA and NCCL; it
// links the libnccl.so.2 that LibTorch itself loads (the torch wheel's nvidia/nccl).
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include "../check.h"
#include "graphshard/nccl.h"
#include "graphshard/shapes.h"

namespace graphshard {
namespace {

using Clock = std::chrono::steady_clock;

ncclDataType_t nccl_type(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    case at::kHalf:
      return ncclFloat16;
    case at::kBFloat16:
      return ncclBfloat16;
    case at::kLong:
      return ncclInt64;
    case at::kInt:
      return ncclInt32;
    case at::kChar:
      return ncclInt8;
    case at::kByte:
    case at::kBool:
      return ncclUint8;
    default:
      TORCH_CHECK_VALUE(false, "graphshard::nccl sum: dtype: expected one of float32, float64, ",
                        "float16, bfloat16, int64, int32, int8, uint8, bool, got ", t,
                        " (all_gather_v and all_to_all_v move any dtype)");
  }
}

// A sum of bools is their logical or, as in ATen (and so on the other engines); NCCL would
// add them as bytes.
ncclRedOp_t sum_op(const at::Tensor& t) {
  return t.scalar_type() == at::kBool ? ncclMax : ncclSum;
}

char* bytes_at(const at::Tensor& t, int64_t element) {
  return static_cast<char*>(t.data_ptr()) + element * t.element_size();
}

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size, int device,
                   std::chrono::milliseconds timeout)
      : rank_(rank), size_(size), device_(device), timeout_(timeout) {
    const auto deadline = Clock::now() + timeout;  // for the whole initialisation
    static std::atomic<uint64_t> created{0};
    const std::string key = "graphshard/nccl/" + std::to_string(created++);
    ncclUniqueId id;
    if (rank == 0) {
      const ncclResult_t r = ncclGetUniqueId(&id);
      TORCH_CHECK(r == ncclSuccess, "graphshard::nccl init on rank 0: ncclGetUniqueId failed: ",
                  ncclGetErrorString(r));
      const auto* p = reinterpret_cast<const uint8_t*>(&id);
      store->set(key, std::vector<uint8_t>(p, p + sizeof(id)));
    } else {
      try {
        // Bounded by our timeout, not the store's.
        store->wait({key}, std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::max(deadline - Clock::now(), Clock::duration::zero())));
      } catch (const std::exception& e) {
        throw CommTimeout("init", rank, {0},
                          "graphshard::nccl init on rank " + std::to_string(rank) +
                              ": rank 0's unique id did not reach the store within " +
                              std::to_string(timeout.count()) + " ms (" + e.what() + ")");
      }
      const std::vector<uint8_t> v = store->get(key);
      TORCH_CHECK(v.size() == sizeof(id), "graphshard::nccl init on rank ", rank,
                  ": the store's unique id has ", v.size(), " bytes, expected ", sizeof(id));
      std::memcpy(&id, v.data(), sizeof(id));
    }
    const c10::cuda::CUDAGuard guard(device_);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;  // every call returns at once, so a lost peer cannot block the host
    // A failure may come with a live handle (non-blocking init), which fail() then aborts.
    enqueued("init", ncclCommInitRankConfig(&comm_, size, id, rank, &config), deadline);
    watchdog_ = std::thread([this] { watch(); });
  }

  ~NcclCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    watchdog_.join();  // from here on this thread alone uses comm_
    if (!comm_) return;
    try {
      if (!aborted_) {
        // Flush what was issued (bounded by the timeout), then free the communicator.
        enqueued("finalize", call([&] { return ncclCommFinalize(comm_); }));
        std::lock_guard<std::mutex> lock(comm_mu_);
        if (!aborted_) ncclCommDestroy(comm_);
        return;
      }
    } catch (...) {  // a destructor does not throw: fail() has aborted the communicator
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }
  std::string engine() const override { return "nccl"; }
  at::Device home_device() const override { return at::Device(at::kCUDA, device_); }

  // A .cpu() of a result returns once the kernels have stopped, also when they stopped because
  // NCCL failed or was aborted: ask NCCL now.
  void check_completed() override {
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

 protected:
  void do_all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                       const std::vector<int64_t>& counts, OwnPiece own) override {
    const char* op = "all_gather_v";
    const c10::cuda::CUDAGuard guard(device_);  // NCCL and ATen work on our device
    enter(op, {send, recv});
    const auto off = offsets_of(counts);
    const int64_t es = send.element_size();  // moved as bytes: every dtype
    const auto stream = current_stream();
    if (detail::all_equal(counts)) {  // NCCL's own all-gather; in place when send is recv's piece
      enqueued(op, call([&] {
                 return ncclAllGather(send.data_ptr(), recv.data_ptr(), counts[rank_] * es,
                                      ncclUint8, comm_, stream);
               }));
    } else {
      enqueued(
          op, group([&](const Issue& issue) {
            for (int q = 0; q < size_; ++q) {
              if (q == rank_) continue;
              if (counts[rank_] > 0) {
                issue(ncclSend(send.data_ptr(), counts[rank_] * es, ncclUint8, q, comm_, stream));
              }
              if (counts[q] > 0) {
                issue(
                    ncclRecv(bytes_at(recv, off[q]), counts[q] * es, ncclUint8, q, comm_, stream));
              }
            }
          }));
      if (own == OwnPiece::kCopy) copy_async(recv, off[rank_], send, 0, counts[rank_], stream);
    }
    issued(op, stream);
  }

  void do_all_reduce_sum(const at::Tensor& buffer) override {
    const char* op = "all_reduce_sum";
    const c10::cuda::CUDAGuard guard(device_);  // NCCL and ATen work on our device
    enter(op, {buffer});
    const auto stream = current_stream();
    enqueued(op, call([&] {
               return ncclAllReduce(buffer.data_ptr(), buffer.data_ptr(), buffer.numel(),
                                    nccl_type(buffer.scalar_type()), sum_op(buffer), comm_, stream);
             }));
    issued(op, stream);
  }

  void do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                           const std::vector<int64_t>& counts, const at::Tensor& own) override {
    const char* op = "reduce_scatter_v";
    const c10::cuda::CUDAGuard guard(device_);  // NCCL and ATen work on our device
    enter(op, {send, recv});
    const int64_t n = counts[rank_];
    const auto type = nccl_type(send.scalar_type());
    const auto stream = current_stream();
    if (detail::all_equal(counts)) {  // NCCL's reduce-scatter reads every piece from send
      if (own.defined() && n > 0) send.narrow(0, rank_ * n, n).view(own.sizes()).copy_(own);
      enqueued(op, call([&] {
                 return ncclReduceScatter(send.data_ptr(), recv.data_ptr(), n, type, sum_op(send),
                                          comm_, stream);
               }));
      issued(op, stream);
      return;
    }
    // Uneven pieces: each peer's piece r arrives by point-to-point transfer (the all-to-all's
    // (W-1)/W of the buffer on the wire), then one sum in rank order, as the Gloo engine does.
    const auto off = offsets_of(counts);
    at::Tensor staging = at::empty({n * size_}, send.options());
    enqueued(op, group([&](const Issue& issue) {
               for (int q = 0; q < size_; ++q) {
                 if (q == rank_) continue;
                 if (counts[q] > 0) {
                   issue(ncclSend(bytes_at(send, off[q]), counts[q], type, q, comm_, stream));
                 }
                 if (n > 0) issue(ncclRecv(bytes_at(staging, q * n), n, type, q, comm_, stream));
               }
             }));
    if (n > 0) {
      at::Tensor mine = own.defined() ? own : send.narrow(0, off[rank_], n);
      at::Tensor out = recv.view(mine.sizes());
      // recv may be send's own piece (in place): summed into, it must not be read afterwards.
      if (at::get_overlap_status(out, mine) != at::MemOverlapStatus::No) mine = mine.clone();
      auto piece = [&](int q) {
        return q == rank_ ? mine : staging.narrow(0, q * n, n).view(mine.sizes());
      };
      if (size_ == 1) {
        out.copy_(piece(0));
      } else {
        at::add_out(out, piece(0), piece(1));
        for (int q = 2; q < size_; ++q) out.add_(piece(q));
      }
    }
    issued(op, stream);
  }

  void do_all_to_all_v(const at::Tensor& send, const std::vector<int64_t>& send_counts,
                       const at::Tensor& recv, const std::vector<int64_t>& recv_counts,
                       OwnPiece own) override {
    const char* op = "all_to_all_v";
    const c10::cuda::CUDAGuard guard(device_);  // NCCL and ATen work on our device
    enter(op, {send, recv});
    const auto soff = offsets_of(send_counts), roff = offsets_of(recv_counts);
    const int64_t es = send.element_size();  // moved as bytes: every dtype
    const auto stream = current_stream();
    enqueued(op, group([&](const Issue& issue) {
               for (int q = 0; q < size_; ++q) {
                 if (q == rank_) continue;
                 if (send_counts[q] > 0) {
                   issue(ncclSend(bytes_at(send, soff[q]), send_counts[q] * es, ncclUint8, q, comm_,
                                  stream));
                 }
                 if (recv_counts[q] > 0) {
                   issue(ncclRecv(bytes_at(recv, roff[q]), recv_counts[q] * es, ncclUint8, q, comm_,
                                  stream));
                 }
               }
             }));
    if (own == OwnPiece::kCopy) {
      copy_async(recv, roff[rank_], send, soff[rank_], send_counts[rank_], stream);
    }
    issued(op, stream);
  }

  // An all-reduce of one int on the device, then a host wait for it (bounded by the timeout).
  void do_barrier() override {
    const char* op = "barrier";
    const c10::cuda::CUDAGuard guard(device_);
    at::Tensor one = at::ones({1}, at::TensorOptions().dtype(at::kInt).device(at::kCUDA, device_));
    enter(op, {one});
    const auto stream = current_stream();
    enqueued(op, call([&] {
               return ncclAllReduce(one.data_ptr(), one.data_ptr(), 1, ncclInt32, ncclSum, comm_,
                                    stream);
             }));
    issued(op, stream);
    // Our own event: the watchdog destroys the ones it retires.
    cudaEvent_t done;
    C10_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    C10_CUDA_CHECK(cudaEventRecord(done, stream));
    const auto deadline = Clock::now() + timeout_;
    cudaError_t q = cudaErrorNotReady;
    bool late = false;
    while (q == cudaErrorNotReady && !late && !failed()) {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      q = cudaEventQuery(done);
      late = q == cudaErrorNotReady && Clock::now() > deadline;
    }
    cudaEventDestroy(done);
    if (late) fail(op, "did not complete", /*timed_out=*/true);
    if (q != cudaSuccess && q != cudaErrorNotReady) {
      fail(op, std::string("CUDA: ") + cudaGetErrorString(q), false);
    }
    std::lock_guard<std::mutex> lock(mu_);
    raise_if_failed();
  }

 private:
  struct InFlight {
    std::string op;
    cudaEvent_t done;
    Clock::time_point since;
  };

  cudaStream_t current_stream() const { return at::cuda::getCurrentCUDAStream(device_).stream(); }

  // Before any NCCL call: a communicator that failed raises; buffers must live on our device.
  void enter(const char* op, std::initializer_list<at::Tensor> buffers) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      raise_if_failed();
    }
    for (const at::Tensor& t : buffers) {
      detail::check(t.is_cuda() && t.get_device() == device_,
                    ("Communicator::" + std::string(op)).c_str(), "buffer device",
                    at::Device(at::kCUDA, device_), t.device(), rank_);
    }
  }

  // Copies n elements stream-ordered (the own piece, which does not cross the wire).
  static void copy_async(const at::Tensor& dst, int64_t dst_at, const at::Tensor& src,
                         int64_t src_at, int64_t n, cudaStream_t stream) {
    if (n == 0 || bytes_at(dst, dst_at) == bytes_at(src, src_at)) return;
    C10_CUDA_CHECK(cudaMemcpyAsync(bytes_at(dst, dst_at), bytes_at(src, src_at),
                                   n * src.element_size(), cudaMemcpyDeviceToDevice, stream));
  }

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

  // The result of the last NCCL call of an operation (a collective, a group, init, finalize):
  // on a non-blocking communicator it may be ncclInProgress while the work is being
  // enqueued, and neither the communicator nor the stream may be used until it has settled.
  void enqueued(const char* op, ncclResult_t r, Clock::time_point deadline = {}) {
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
  void settle(const char* op, Clock::time_point deadline) {
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

  bool failed() {
    std::lock_guard<std::mutex> lock(mu_);
    return !failure_.empty();
  }

  // After the NCCL calls of one operation: its completion event joins the watch list.
  void issued(const char* op, cudaStream_t stream) {
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
  void fail(const std::string& op, const std::string& what, bool timed_out) {
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

  void raise_if_failed() const {  // mu_ held
    if (failure_.empty()) return;
    if (timed_out_) throw CommTimeout(failure_op_, rank_, {}, failure_);
    throw CommError(failure_op_, rank_, {}, failure_);
  }

  // The watchdog: retires completed operations; fails the communicator on an asynchronous
  // NCCL error or on an operation older than the timeout.
  void watch() {
    cudaSetDevice(device_);
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      wake_.wait_for(lock, std::chrono::milliseconds(20));
      cudaError_t done = cudaSuccess;
      while (!in_flight_.empty() &&
             (done = cudaEventQuery(in_flight_.front().done)) == cudaSuccess) {
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

}  // namespace

bool nccl_engine_built() {
  return true;
}

CommPtr make_nccl_communicator(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                               int device, std::chrono::milliseconds timeout) {
  const char* fn = "make_nccl_communicator";
  TORCH_CHECK_VALUE(store, "graphshard::", fn, ": store: expected a store, got null");
  detail::check(size >= 1 && rank >= 0 && rank < size, fn, "rank",
                "a rank in [0, size=" + std::to_string(size) + ")", rank, rank);
  const int devices = static_cast<int>(c10::cuda::device_count());
  detail::check(device >= 0 && device < devices, fn, "device",
                "a CUDA device index in [0, " + std::to_string(devices) + ")", device, rank);
  return std::make_shared<NcclCommunicator>(store, rank, size, device, timeout);
}

}  // namespace graphshard
