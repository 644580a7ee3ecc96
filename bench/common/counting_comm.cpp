#include "counting_comm.h"

#include <ATen/ATen.h>

#include "graphshard/shapes.h"

namespace graphshard::study {

void CountingCommunicator::add(const char* op, int64_t sent, int64_t received,
                               const at::Tensor& like) {
  auto& t = traffic_[op];
  const auto e = static_cast<int64_t>(like.element_size());
  ++t.calls;
  t.bytes_sent += sent * e;
  t.bytes_received += received * e;
}

void CountingCommunicator::do_all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                                           const std::vector<int64_t>& counts, OwnPiece own) {
  ForwardingCommunicator::do_all_gather_v(send, recv, counts, own);
  const int r = rank();
  add("all_gather_v", counts[r] * (size() - 1), total(counts) - counts[r], send);
}

void CountingCommunicator::do_all_reduce_sum(const at::Tensor& buffer) {
  ForwardingCommunicator::do_all_reduce_sum(buffer);
  const int64_t ring = 2 * (size() - 1) * buffer.numel() / size();
  add("all_reduce_sum", ring, ring, buffer);
}

void CountingCommunicator::do_all_reduce_sum_into(const at::Tensor& send, const at::Tensor& recv) {
  ForwardingCommunicator::do_all_reduce_sum_into(send, recv);
  const int64_t ring = 2 * (size() - 1) * send.numel() / size();
  add("all_reduce_sum", ring, ring, send);
}

void CountingCommunicator::do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                                               const std::vector<int64_t>& counts,
                                               const at::Tensor& own) {
  ForwardingCommunicator::do_reduce_scatter_v(send, recv, counts, own);
  const int r = rank();
  add("reduce_scatter_v", total(counts) - counts[r], counts[r] * (size() - 1), send);
}

void CountingCommunicator::do_all_to_all_v(const at::Tensor& send,
                                           const std::vector<int64_t>& send_counts,
                                           const at::Tensor& recv,
                                           const std::vector<int64_t>& recv_counts, OwnPiece own) {
  ForwardingCommunicator::do_all_to_all_v(send, send_counts, recv, recv_counts, own);
  const int r = rank();
  add("all_to_all_v", total(send_counts) - send_counts[r], total(recv_counts) - recv_counts[r],
      send);
}

}  // namespace graphshard::study
