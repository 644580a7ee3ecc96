// The native NCCL engine: a Communicator over one NCCL communicator, for CUDA tensors.
//
// Why not c10d's ProcessGroupNCCL: its all-gather and reduce-scatter need equal pieces, and its
// all-to-all copies through lists; this engine moves uneven pieces by grouped point-to-point
// transfers straight into their final buffers, and uses NCCL's own collectives when the
// counts are equal (all-gather, reduce-scatter) and for all-reduce.
//
// Semantics (comm.h): every call is stream-ordered on the current CUDA stream of the
// communicator's device and returns without waiting for the GPU, except barrier(), which
// returns when the barrier has completed on the device. Buffers must be CUDA tensors on that
// device. all_gather_v and all_to_all_v move any dtype (as bytes); sums take float32, float64,
// float16, bfloat16, int64, int32, int8, uint8 and bool (a logical or), 16-bit floats
// accumulated in float32 (comm.h). NCCL gives every rank the same bits; its own collectives
// (equal counts) may add in another order than the uneven path, which adds in rank order.
//
// Failures: a watchdog thread polls the NCCL communicator's asynchronous error and the age of
// the oldest operation in flight (counted from when the one before it completed). On an error,
// a CUDA error, or an operation older than timeout(), it aborts the NCCL communicator (so
// kernels waiting for a lost peer exit) and records which operation failed; that call's
// results are undefined, and every later call on this communicator raises CommError
// (CommTimeout for a timeout) naming that operation, as does check_completed(). Not for CUDA
// graph capture: the watchdog records and queries an event per operation, and barrier() waits
// on the host.
#pragma once

#include <chrono>
#include <string>

#include <torch/csrc/distributed/c10d/Store.hpp>

#include "graphshard/comm.h"

namespace graphshard {

// True when this build has the NCCL engine (built with GRAPHSHARD_CUDA and NCCL found).
bool nccl_engine_built();

// Ranks meet through `store`: rank 0 creates the NCCL unique id and publishes it under a key
// unique to this (the n-th) NCCL communicator of the process; every rank must create its
// communicators in the same order. `device`: this rank's CUDA device index. Initialisation
// (waiting for rank 0's id, then NCCL's own) that does not complete within `timeout` raises
// CommTimeout. In a build without the engine,
// raises c10::Error saying so.
CommPtr make_nccl_communicator(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                               int device, std::chrono::milliseconds timeout);

}  // namespace graphshard
