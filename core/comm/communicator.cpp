// Buffer validation shared by every engine: each engine's do_* sees only well-formed calls.
#include <ATen/ATen.h>

#include "../check.h"
#include "graphshard/comm.h"
#include "graphshard/shapes.h"

namespace graphshard {
namespace {

void check_buffer(const char* fn, const char* arg, const at::Tensor& t, const at::Tensor& like,
                  int64_t numel, int rank) {
  detail::check(t.defined(), fn, arg, "a defined tensor", "an undefined tensor", rank);
  detail::check(t.dim() == 1 && t.is_contiguous(), fn, arg, "a 1-D contiguous tensor",
                t.sizes(), rank);
  detail::check(t.scalar_type() == like.scalar_type(), fn, std::string(arg) + " dtype",
                like.scalar_type(), t.scalar_type(), rank);
  detail::check(t.device() == like.device(), fn, std::string(arg) + " device", like.device(),
                t.device(), rank);
  detail::check(t.numel() == numel, fn, std::string(arg) + " numel", numel, t.numel(), rank);
}

}  // namespace

std::vector<int64_t> offsets_of(const std::vector<int64_t>& counts) {
  std::vector<int64_t> off(counts.size() + 1, 0);
  for (size_t i = 0; i < counts.size(); ++i) off[i + 1] = off[i] + counts[i];
  return off;
}

void Communicator::all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                                const std::vector<int64_t>& counts) {
  const char* fn = "Communicator::all_gather_v";
  detail::check_sizes(fn, "counts", counts, size(), rank());
  check_buffer(fn, "send", send, send, counts[rank()], rank());
  check_buffer(fn, "recv", recv, send, total(counts), rank());
  do_all_gather_v(send, recv, counts);
}

void Communicator::all_reduce_sum(const at::Tensor& buffer) {
  check_buffer("Communicator::all_reduce_sum", "buffer", buffer, buffer, buffer.numel(), rank());
  do_all_reduce_sum(buffer);
}

void Communicator::reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                                    const std::vector<int64_t>& counts) {
  const char* fn = "Communicator::reduce_scatter_v";
  detail::check_sizes(fn, "counts", counts, size(), rank());
  check_buffer(fn, "send", send, send, total(counts), rank());
  check_buffer(fn, "recv", recv, send, counts[rank()], rank());
  do_reduce_scatter_v(send, recv, counts);
}

void Communicator::all_to_all_v(const at::Tensor& send, const std::vector<int64_t>& send_counts,
                                const at::Tensor& recv, const std::vector<int64_t>& recv_counts) {
  const char* fn = "Communicator::all_to_all_v";
  detail::check_sizes(fn, "send_counts", send_counts, size(), rank());
  detail::check_sizes(fn, "recv_counts", recv_counts, size(), rank());
  check_buffer(fn, "send", send, send, total(send_counts), rank());
  check_buffer(fn, "recv", recv, send, total(recv_counts), rank());
  do_all_to_all_v(send, send_counts, recv, recv_counts);
}

void Communicator::barrier() { do_barrier(); }

}  // namespace graphshard
