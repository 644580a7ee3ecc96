// Rank faults inside the primitives and shard_graph_to_local (SPEC §5: no rank hangs because
// another failed), shared by the simulated (faults_sim_test.cpp) and the Gloo
// (faults_gloo.cpp) fault tests.
//
// A FaultStep is one communicating step of one public function on small, realistic inputs:
// the forward of a primitive, or its backward (the forward then runs first, unfaulted). Every
// rank contributes data to every peer in the step (no zero-length pieces), so a peer that dies
// or stalls there cannot go unnoticed by any survivor.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "graphshard/comm.h"
#include "graphshard/forwarding_comm.h"

namespace graphshard::props {

struct FaultStep {
  std::string name;  // e.g. "sync_tensor_backward"; a gtest parameter name
  // Builds this rank's inputs and runs what precedes the step (the forward of a backward step);
  // returns the step itself, which issues at least one collective.
  std::function<std::function<void()>(const CommPtr&)> prepare;
};

// Every step: the forward of gather_tensor, reduce_tensor, sync_tensor, reduce_shard_tensor,
// all_to_all_transpose and shard_graph_to_local, and the backward of sync_tensor, shard_tensor,
// reduce_shard_tensor, all_to_all_transpose, ensure_sharded and shard_graph_to_local.
const std::vector<FaultStep>& fault_steps();
std::vector<std::string> fault_step_names();
const FaultStep& fault_step(const std::string& name);

// A Communicator that forwards every collective to `inner` after calling `before(op, index)`
// (index counts this rank's collectives from 0). Records the operations it forwarded, and
// lets a test act at an exact collective: die or stall inside a primitive, just before the
// collective the primitive issues.
class HookedCommunicator : public ForwardingCommunicator {
 public:
  using Hook = std::function<void(const std::string& op, int64_t index)>;
  explicit HookedCommunicator(CommPtr inner, Hook before = nullptr)
      : ForwardingCommunicator(std::move(inner)), before_(std::move(before)) {}

  const std::vector<std::string>& ops() const { return ops_; }
  void set_hook(Hook before) { before_ = std::move(before); }

 protected:
  void do_all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                       const std::vector<int64_t>& counts, OwnPiece own) override {
    enter("all_gather_v");
    ForwardingCommunicator::do_all_gather_v(send, recv, counts, own);
  }
  void do_all_reduce_sum(const at::Tensor& buffer) override {
    enter("all_reduce_sum");
    ForwardingCommunicator::do_all_reduce_sum(buffer);
  }
  void do_all_reduce_sum_into(const at::Tensor& send, const at::Tensor& recv) override {
    enter("all_reduce_sum");
    ForwardingCommunicator::do_all_reduce_sum_into(send, recv);
  }
  void do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                           const std::vector<int64_t>& counts, const at::Tensor& own) override {
    enter("reduce_scatter_v");
    ForwardingCommunicator::do_reduce_scatter_v(send, recv, counts, own);
  }
  void do_all_to_all_v(const at::Tensor& send, const std::vector<int64_t>& send_counts,
                       const at::Tensor& recv, const std::vector<int64_t>& recv_counts,
                       OwnPiece own) override {
    enter("all_to_all_v");
    ForwardingCommunicator::do_all_to_all_v(send, send_counts, recv, recv_counts, own);
  }
  void do_barrier() override {
    enter("barrier");
    ForwardingCommunicator::do_barrier();
  }

 private:
  void enter(const std::string& op) {
    const auto index = static_cast<int64_t>(ops_.size());
    ops_.push_back(op);
    if (before_) before_(op, index);
  }

  Hook before_;
  std::vector<std::string> ops_;
};

// What a survivor saw: the step raised `error` (empty when it returned) after `elapsed`.
struct Raised {
  bool comm_error = false;  // CommError or CommTimeout
  bool timeout = false;     // CommTimeout
  std::string op;           // CommError::op()
  int rank = -1;            // CommError::rank()
  std::vector<int> peers;   // CommError::peers()
  std::string error;        // what()
  std::chrono::milliseconds elapsed{0};
};

// Runs step(), timing it; rethrows nothing. Prints "[rank r] <name>: raised after N ms: <what>".
Raised run_timed(const std::string& name, int rank, const std::function<void()>& step);

// Whether `message` names `rank` as a peer: "rank 2", "ranks [2]", "ranks [0, 2]", ...
bool names_rank(const std::string& message, int rank);

}  // namespace graphshard::props
