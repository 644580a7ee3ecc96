#include "group.h"

#include <map>
#include <mutex>
#include <utility>

#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/GroupRegistry.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>

#include "graphshard/c10d.h"

namespace graphshard::ops {
namespace {

struct Cached {
  const c10d::Backend* backend = nullptr;  // identity only: the Communicator holds none
  CommPtr comm;
};

std::mutex cache_mutex;
std::map<std::pair<std::string, int>, Cached>& cache() {
  static auto* c = new std::map<std::pair<std::string, int>, Cached>();  // never destroyed: group.h
  return *c;
}

// The backend group `name` has for `device` while it is the one the Communicator was made for;
// null once the group is destroyed (or its name reused).
BackendLookup lookup_of(const std::string& name, c10::DeviceType device,
                        const c10d::Backend* made_for) {
  return [=]() -> c10::intrusive_ptr<c10d::Backend> {
    c10::intrusive_ptr<c10d::Backend> b;
    try {
      b = c10d::resolve_process_group(name)->getBackend(device);
    } catch (const std::exception&) {  // no such group (any more)
      return {};
    }
    return b.get() == made_for ? b : c10::intrusive_ptr<c10d::Backend>();
  };
}

std::chrono::milliseconds timeout_of(const c10::intrusive_ptr<c10d::Backend>& backend) {
  try {
    if (auto o = backend->getBackendOptions()) return o->timeout;
  } catch (const std::exception&) {  // a backend without options: c10d's default
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(::kBackendDefaultTimeout);
}

}  // namespace

CommPtr communicator_for(const std::string& name, c10::DeviceType device) {
  const auto group = c10d::resolve_process_group(name);
  const auto backend = group->getBackend(device);
  std::lock_guard<std::mutex> lk(cache_mutex);
  Cached& c = cache()[{name, static_cast<int>(device)}];
  if (!c.comm || c.backend != backend.get()) {
    c.comm = make_c10d_communicator(lookup_of(name, device, backend.get()), timeout_of(backend),
                                    group->getStore());
    c.backend = backend.get();
  }
  return c.comm;
}

int group_rank(const std::string& name) {
  return c10d::resolve_process_group(name)->getRank();
}

int group_size(const std::string& name) {
  return c10d::resolve_process_group(name)->getSize();
}

void translate_comm_errors(const std::function<void()>& body) {
  try {
    body();
  } catch (const CommError& e) {
    std::string peers = "[";
    for (size_t i = 0; i < e.peers().size(); ++i) {
      peers += (i ? ", " : "") + std::to_string(e.peers()[i]);
    }
    const bool timeout = dynamic_cast<const CommTimeout*>(&e) != nullptr;
    const std::string tag = std::string("graphshard.") + (timeout ? "CommTimeout" : "CommError") +
                            "(op=" + e.op() + ", rank=" + std::to_string(e.rank()) +
                            ", peers=" + peers + "]): ";
    C10_THROW_ERROR(DistBackendError, tag + e.what());
  }
}

}  // namespace graphshard::ops
