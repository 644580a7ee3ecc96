// The native NCCL engine (graphshard/nccl.h): the collectives and the barrier of the
// NcclCommunicator (nccl_internal.h). Compiled only with GRAPHSHARD_CUDA and NCCL; it links the
// libnccl.so.2 that LibTorch itself loads (the torch wheel's nvidia/nccl).
#include <chrono>
#include <string>
#include <thread>

#include <ATen/ATen.h>
#include <ATen/MemoryOverlap.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include "../check.h"
#include "graphshard/shapes.h"
#include "nccl_internal.h"

namespace graphshard::detail {
namespace {

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

}  // namespace

void NcclCommunicator::do_all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                                       const std::vector<int64_t>& counts, OwnPiece own) {
  const char* op = "all_gather_v";
  const c10::cuda::CUDAGuard guard(device_);  // NCCL and ATen work on our device
  enter(op, {send, recv});
  const auto off = offsets_of(counts);
  const int64_t es = send.element_size();  // moved as bytes: every dtype
  const auto stream = current_stream();
  if (detail::all_equal(counts)) {  // NCCL's own all-gather; in place when send is recv's piece
    enqueued(op, call([&] {
               return ncclAllGather(send.data_ptr(), recv.data_ptr(), counts[rank_] * es, ncclUint8,
                                    comm_, stream);
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
              issue(ncclRecv(bytes_at(recv, off[q]), counts[q] * es, ncclUint8, q, comm_, stream));
            }
          }
        }));
    if (own == OwnPiece::kCopy) copy_async(recv, off[rank_], send, 0, counts[rank_], stream);
  }
  issued(op, stream);
}

void NcclCommunicator::do_all_reduce_sum(const at::Tensor& buffer) {
  do_all_reduce_sum_into(buffer, buffer);
}

// NCCL's all-reduce reads send and writes recv itself (in place when they are one buffer).
void NcclCommunicator::do_all_reduce_sum_into(const at::Tensor& send, const at::Tensor& recv) {
  const char* op = "all_reduce_sum";
  const c10::cuda::CUDAGuard guard(device_);  // NCCL and ATen work on our device
  enter(op, {send, recv});
  const auto stream = current_stream();
  enqueued(op, call([&] {
             return ncclAllReduce(send.data_ptr(), recv.data_ptr(), send.numel(),
                                  nccl_type(send.scalar_type()), sum_op(send), comm_, stream);
           }));
  issued(op, stream);
}

void NcclCommunicator::do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                                           const std::vector<int64_t>& counts,
                                           const at::Tensor& own) {
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

void NcclCommunicator::do_all_to_all_v(const at::Tensor& send,
                                       const std::vector<int64_t>& send_counts,
                                       const at::Tensor& recv,
                                       const std::vector<int64_t>& recv_counts, OwnPiece own) {
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
void NcclCommunicator::do_barrier() {
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

cudaStream_t NcclCommunicator::current_stream() const {
  return at::cuda::getCurrentCUDAStream(device_).stream();
}

// Before any NCCL call: a communicator that failed raises; buffers must live on our device.
void NcclCommunicator::enter(const char* op, std::initializer_list<at::Tensor> buffers) {
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
void NcclCommunicator::copy_async(const at::Tensor& dst, int64_t dst_at, const at::Tensor& src,
                                  int64_t src_at, int64_t n, cudaStream_t stream) {
  if (n == 0 || bytes_at(dst, dst_at) == bytes_at(src, src_at)) return;
  C10_CUDA_CHECK(cudaMemcpyAsync(bytes_at(dst, dst_at), bytes_at(src, src_at),
                                 n * src.element_size(), cudaMemcpyDeviceToDevice, stream));
}

}  // namespace graphshard::detail
