// A Communicator that forwards every call to another one: the base of decorators that watch
// the collectives without changing them (counting traffic, hooking faults into a test). A
// decorator overrides the do_* calls it watches and calls this base's to forward.
#pragma once

#include <utility>

#include "graphshard/comm.h"

namespace graphshard {

class ForwardingCommunicator : public Communicator {
 public:
  explicit ForwardingCommunicator(CommPtr inner) : inner_(std::move(inner)) {}

  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  std::chrono::milliseconds timeout() const override { return inner_->timeout(); }
  std::string engine() const override { return inner_->engine(); }
  at::Device home_device() const override { return inner_->home_device(); }
  void check_completed() override { inner_->check_completed(); }
  const CommPtr& inner() const { return inner_; }

 protected:
  // The public calls of `inner` (not its do_*), so its validation and checked mode still run.
  void do_all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                       const std::vector<int64_t>& counts, OwnPiece own) override {
    inner_->all_gather_v(send, recv, counts, own);
  }
  void do_all_reduce_sum(const at::Tensor& buffer) override { inner_->all_reduce_sum(buffer); }
  void do_all_reduce_sum_into(const at::Tensor& send, const at::Tensor& recv) override {
    inner_->all_reduce_sum(send, recv);
  }
  void do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                           const std::vector<int64_t>& counts, const at::Tensor& own) override {
    inner_->reduce_scatter_v(send, recv, counts, own);
  }
  void do_all_to_all_v(const at::Tensor& send, const std::vector<int64_t>& send_counts,
                       const at::Tensor& recv, const std::vector<int64_t>& recv_counts,
                       OwnPiece own) override {
    inner_->all_to_all_v(send, send_counts, recv, recv_counts, own);
  }
  void do_barrier() override { inner_->barrier(); }

 private:
  CommPtr inner_;
};

}  // namespace graphshard
