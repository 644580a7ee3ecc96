// Who keeps a c10d backend alive (graphshard/c10d.h): over a BackendLookup the owner alone (a
// collective after the lookup came back empty is a CommError); over a backend, the
// Communicator. One in-process Gloo rank (W = 1), whose barrier still goes through the backend.
#include <gtest/gtest.h>

#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include "graphshard/c10d.h"

namespace graphshard {
namespace {

using namespace std::chrono_literals;

c10::intrusive_ptr<c10d::Backend> one_rank_gloo(const c10::intrusive_ptr<c10d::Store>& store) {
  auto opts = c10d::ProcessGroupGloo::Options::create(30s);
  opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, 0, 1, opts);
}

TEST(C10dCommunicator, ALookedUpBackendGoesWithItsOwner) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  // The owner's slot (a group registry): the lookup holds the slot, not the backend.
  auto owner = std::make_shared<c10::intrusive_ptr<c10d::Backend>>(one_rank_gloo(store));
  const c10::weak_intrusive_ptr<c10d::Backend> alive(*owner);
  const CommPtr comm = make_c10d_communicator([owner] { return *owner; }, 30000ms, store);
  comm->barrier();
  owner->reset();  // the owner (a destroyed torch.distributed group) lets go
  EXPECT_TRUE(alive.expired()) << "the Communicator kept a looked-up backend alive";
  try {
    comm->barrier();
    FAIL() << "a call on a destroyed group did not raise";
  } catch (const CommError& e) {
    EXPECT_EQ(e.op(), "barrier");
    EXPECT_EQ(e.rank(), 0);
    EXPECT_TRUE(e.peers().empty());
    EXPECT_NE(std::string(e.what()).find("process group was destroyed"), std::string::npos)
        << e.what();
  }
}

TEST(C10dCommunicator, AnOwnedBackendLivesWithItsCommunicator) {
  auto store = c10::make_intrusive<c10d::HashStore>();
  auto backend = one_rank_gloo(store);
  const c10::weak_intrusive_ptr<c10d::Backend> alive(backend);
  CommPtr comm = make_c10d_communicator(backend, 30000ms, store);
  backend.reset();
  EXPECT_FALSE(alive.expired());
  comm->barrier();
  comm.reset();
  EXPECT_TRUE(alive.expired());
}

}  // namespace
}  // namespace graphshard
