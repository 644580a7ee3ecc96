// A Communicator decorator that counts, per operation, the bytes this rank sends and receives,
// whatever engine runs underneath (sim, Gloo, NCCL). The conventions match the sim ledger:
// point-to-point bytes excluding self-messages, and an all-reduce counted as a ring sends it,
// 2(W-1)/W of the buffer each way.
#pragma once

#include <map>
#include <string>

#include "graphshard/forwarding_comm.h"

namespace graphshard::study {

struct OpTraffic {
  int64_t calls = 0;
  int64_t bytes_sent = 0;
  int64_t bytes_received = 0;
};

class CountingCommunicator : public ForwardingCommunicator {
 public:
  using ForwardingCommunicator::ForwardingCommunicator;

  const std::map<std::string, OpTraffic>& traffic() const { return traffic_; }
  void reset() { traffic_.clear(); }

 protected:
  void do_all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                       const std::vector<int64_t>& counts, OwnPiece own) override;
  void do_all_reduce_sum(const at::Tensor& buffer) override;
  void do_all_reduce_sum_into(const at::Tensor& send, const at::Tensor& recv) override;
  void do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                           const std::vector<int64_t>& counts, const at::Tensor& own) override;
  void do_all_to_all_v(const at::Tensor& send, const std::vector<int64_t>& send_counts,
                       const at::Tensor& recv, const std::vector<int64_t>& recv_counts,
                       OwnPiece own) override;

 private:
  void add(const char* op, int64_t sent_elems, int64_t recv_elems, const at::Tensor& like);
  std::map<std::string, OpTraffic> traffic_;
};

}  // namespace graphshard::study
