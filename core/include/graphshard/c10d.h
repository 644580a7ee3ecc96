// The c10d engine: a Communicator over any c10d Backend (Gloo on CPU, NCCL on GPU), so a
// process group made in Python or C++ can drive graphshard.
//
// Gloo has no uneven all-gather and emulates reduce-scatter with an all-reduce; this engine
// instead builds all-gather-v from point-to-point messages straight into the output (the even
// case uses the backend's all-gather) and reduce-scatter-v from all-to-all-v plus a local sum
// in rank order (half the traffic of an all-reduce).
#pragma once

#include <chrono>
#include <functional>

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include "graphshard/comm.h"

namespace graphshard {

// `timeout` bounds every wait; a peer that dies or stalls raises CommError/CommTimeout naming
// the operation and the root cause (comm.h, "Who is blamed"). `store`, when given (the store
// the ranks met through, or any store all ranks of the group share), carries the blames that
// let a survivor tell the root cause from the ranks that left after it; without one, a rank
// blames the peer its failing transfer was with. The Communicator keeps `backend` alive.
CommPtr make_c10d_communicator(c10::intrusive_ptr<c10d::Backend> backend,
                               std::chrono::milliseconds timeout,
                               c10::intrusive_ptr<c10d::Store> store = {});

// The backend of a process group someone else owns, held only while a collective runs; null
// once the group is gone.
using BackendLookup = std::function<c10::intrusive_ptr<c10d::Backend>()>;

// The same over a backend the Communicator does not keep: `lookup` is called once here (rank,
// size, engine) and once per collective; a collective after it returned null raises CommError
// (the group was destroyed). So the group's owner, such as torch.distributed, decides when its
// transport is torn down (graphshard's Python operators resolve groups by name this way).
// (c10's weak_intrusive_ptr would not do: it keeps a backend's threads until its last weak
// reference goes.)
CommPtr make_c10d_communicator(BackendLookup lookup, std::chrono::milliseconds timeout,
                               c10::intrusive_ptr<c10d::Store> store = {});

}  // namespace graphshard
