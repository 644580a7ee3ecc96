// Process groups for the operators (core/ops): a torch.distributed group reaches C++ by name, as
// c10d's functional collectives pass it, and is resolved here to a graphshard Communicator over
// the group's c10d Backend for the tensor's device (Gloo for CPU tensors, NCCL for CUDA ones).
// Internal to the operator library.
#pragma once

#include <functional>
#include <string>

#include <c10/core/DeviceType.h>

#include "graphshard/comm.h"

namespace graphshard::ops {

// The Communicator of group `name` for `device`, made once and cached; remade if the name now
// resolves to another backend (a group destroyed and created again under the same name).
// Timeout: the backend's own (its options), else c10d's default. The group's store carries the
// blames of the fault protocol (comm.h, "Who is blamed").
// The Communicator holds no backend between calls (it resolves `name` per collective:
// graphshard/c10d.h, BackendLookup), so destroy_process_group tears the transport down as it
// would without graphshard. (Held here, a backend would outlive its group, with Gloo's worker
// threads, into the interpreter's finalization, where such a thread that drops the last
// reference to a Python-visible tensor aborts the process.) The cache itself is never destroyed.
CommPtr communicator_for(const std::string& name, c10::DeviceType device);

// This rank's index in group `name` (no communication; for shape functions).
int group_rank(const std::string& name);
int group_size(const std::string& name);

// Runs body. A graphshard::CommError (or CommTimeout) leaves it as a c10::DistBackendError, which
// Python sees as torch.distributed.DistBackendError, its message prefixed with
// "graphshard.CommError(op=..., rank=..., peers=[...]): " (CommTimeout for timeouts), from which
// graphshard.CommError is rebuilt in Python. Other errors pass unchanged.
void translate_comm_errors(const std::function<void()>& body);

}  // namespace graphshard::ops
