// The NCCL engine's creation and teardown (nccl_internal.h): the ranks' rendezvous through the
// store, NCCL's non-blocking init, the watchdog's start; finalize on destruction; and
// make_nccl_communicator (graphshard/nccl.h), which checks its arguments first.
#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>

#include "../check.h"
#include "nccl_internal.h"

namespace graphshard {
namespace detail {

NcclCommunicator::NcclCommunicator(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                   int device, std::chrono::milliseconds timeout)
    : rank_(rank), size_(size), device_(device), timeout_(timeout) {
  const auto deadline = Clock::now() + timeout;  // for the whole initialisation
  static std::atomic<uint64_t> created{0};
  const std::string key = "graphshard/nccl/" + std::to_string(created++);
  ncclUniqueId id;
  if (rank == 0) {
    const ncclResult_t r = ncclGetUniqueId(&id);
    TORCH_CHECK(r == ncclSuccess,
                "graphshard::nccl init on rank 0: ncclGetUniqueId failed: ", ncclGetErrorString(r));
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

NcclCommunicator::~NcclCommunicator() {
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

}  // namespace detail

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
  return std::make_shared<detail::NcclCommunicator>(store, rank, size, device, timeout);
}

}  // namespace graphshard
