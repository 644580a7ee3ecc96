// Buffer validation shared by every engine: each engine's do_* sees only well-formed calls;
// and checked mode, where ranks agree on what they are about to do before doing it.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include <ATen/ATen.h>

#include "../check.h"
#include "graphshard/comm.h"
#include "graphshard/shapes.h"

namespace graphshard {
namespace {

// t has like's dtype and device, and numel elements.
void check_like(const char* fn, const char* arg, const at::Tensor& t, const at::Tensor& like,
                int64_t numel, int rank) {
  detail::check(t.scalar_type() == like.scalar_type(), fn, std::string(arg) + " dtype",
                like.scalar_type(), t.scalar_type(), rank);
  detail::check(t.device() == like.device(), fn, std::string(arg) + " device", like.device(),
                t.device(), rank);
  detail::check(t.numel() == numel, fn, std::string(arg) + " numel", numel, t.numel(), rank);
}

void check_buffer(const char* fn, const char* arg, const at::Tensor& t, const at::Tensor& like,
                  int64_t numel, int rank) {
  detail::check(t.defined(), fn, arg, "a defined tensor", "an undefined tensor", rank);
  detail::check(t.dim() == 1 && t.is_contiguous(), fn, arg, "a 1-D contiguous tensor", t.sizes(),
                rank);
  check_like(fn, arg, t, like, numel, rank);
}

// -1: not yet read from the environment; 0 off; 1 on.
std::atomic<int> g_checked{-1};

std::string describe(const char* op, const at::Tensor& t, const std::vector<int64_t>& counts) {
  std::ostringstream os;
  os << op << " dtype=" << t.scalar_type() << " counts=" << detail::str(counts);
  return os.str();
}

}  // namespace

void set_checked_mode(bool on) {
  g_checked.store(on ? 1 : 0, std::memory_order_relaxed);
}

bool checked_mode() {
  int v = g_checked.load(std::memory_order_relaxed);
  if (v < 0) {
    const char* e = std::getenv("GRAPHSHARD_CHECKED");
    const bool on = e && (!std::strcmp(e, "1") || !std::strcmp(e, "true") || !std::strcmp(e, "on"));
    int expected = -1;
    g_checked.compare_exchange_strong(expected, on ? 1 : 0);
    v = g_checked.load(std::memory_order_relaxed);
  }
  return v == 1;
}

void Communicator::check_agreement(const std::string& descriptor, const at::Device& device) {
  if (!checked_mode() || size() == 1) return;
  const int w = size();
  const auto opts = at::TensorOptions().device(device);
  // Two exchanges on the engine directly (not through the checked entry points): the lengths,
  // then the bytes.
  at::Tensor len = at::full({1}, static_cast<int64_t>(descriptor.size()), opts.dtype(at::kLong));
  at::Tensor lens = at::empty({w}, opts.dtype(at::kLong));
  do_all_gather_v(len, lens, std::vector<int64_t>(w, 1), OwnPiece::kCopy);
  const at::Tensor lens_cpu = lens.cpu();
  check_completed();
  std::vector<int64_t> counts(lens_cpu.data_ptr<int64_t>(), lens_cpu.data_ptr<int64_t>() + w);
  at::Tensor mine = at::empty({static_cast<int64_t>(descriptor.size())}, at::kByte);
  std::memcpy(mine.data_ptr(), descriptor.data(), descriptor.size());
  at::Tensor all = at::empty({total(counts)}, opts.dtype(at::kByte));
  do_all_gather_v(mine.to(device), all, counts, OwnPiece::kCopy);
  const at::Tensor all_cpu = all.cpu();
  check_completed();
  const auto* bytes = reinterpret_cast<const char*>(all_cpu.data_ptr());
  std::vector<std::string> views;
  int64_t off = 0;
  for (int q = 0; q < w; ++q) {
    views.emplace_back(bytes + off, static_cast<size_t>(counts[q]));
    off += counts[q];
  }
  bool agree = true;
  for (const auto& v : views) agree = agree && v == views[0];
  if (agree) return;
  std::ostringstream os;
  os << "graphshard checked mode: ranks disagree on the next collective (seen on rank " << rank()
     << "):";
  for (int q = 0; q < w; ++q) os << "\n  rank " << q << ": " << views[q];
  throw c10::ValueError({__func__, __FILE__, static_cast<uint32_t>(__LINE__)}, os.str());
}

at::Tensor Communicator::scratch(ScratchSlot slot, int64_t numel,
                                 const at::TensorOptions& options) {
  const char* fn = "Communicator::scratch";
  detail::check(slot >= 0 && slot < kScratchSlots, fn, "slot",
                "0 <= slot < " + std::to_string(kScratchSlots), static_cast<int>(slot), rank());
  detail::check(numel >= 0, fn, "numel", "numel >= 0", numel, rank());
  if (options.device().type() != at::kCPU) return at::empty({numel}, options);
  const int64_t bytes = numel * static_cast<int64_t>(options.dtype().itemsize());
  at::Tensor& buf = scratch_.at(slot);
  if (!buf.defined() || buf.numel() < bytes) {
    buf = at::Tensor();  // free the smaller one first: peak memory is the larger only
    buf = at::empty({bytes}, options.dtype(at::kByte));
  }
  return buf.narrow(0, 0, bytes).view(options.dtype().toScalarType());
}

void Communicator::release_scratch() {
  for (auto& buf : scratch_) buf = at::Tensor();
}

std::vector<int64_t> offsets_of(const std::vector<int64_t>& counts) {
  std::vector<int64_t> off(counts.size() + 1, 0);
  for (size_t i = 0; i < counts.size(); ++i) off[i + 1] = off[i] + counts[i];
  return off;
}

void Communicator::all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                                const std::vector<int64_t>& counts, OwnPiece own) {
  const char* fn = "Communicator::all_gather_v";
  detail::check_sizes(fn, "counts", counts, size(), rank());
  check_buffer(fn, "send", send, send, counts[rank()], rank());
  check_buffer(fn, "recv", recv, send, total(counts), rank());
  if (checked_mode()) check_agreement(describe("all_gather_v", send, counts), send.device());
  do_all_gather_v(send, recv, counts, own);
}

void Communicator::all_reduce_sum(const at::Tensor& buffer) {
  check_buffer("Communicator::all_reduce_sum", "buffer", buffer, buffer, buffer.numel(), rank());
  if (checked_mode()) {
    check_agreement(describe("all_reduce_sum", buffer, {buffer.numel()}), buffer.device());
  }
  const at::ScalarType acc = detail::accumulation_type(buffer.scalar_type());
  if (acc != buffer.scalar_type()) {  // every engine sums 16-bit floats in float32
    at::Tensor wide = buffer.to(acc);
    do_all_reduce_sum(wide);
    buffer.copy_(wide);
    return;
  }
  do_all_reduce_sum(buffer);
}

void Communicator::all_reduce_sum(const at::Tensor& send, const at::Tensor& recv) {
  const char* fn = "Communicator::all_reduce_sum";
  check_buffer(fn, "send", send, send, send.numel(), rank());
  check_buffer(fn, "recv", recv, send, send.numel(), rank());
  if (checked_mode()) {
    check_agreement(describe("all_reduce_sum", send, {send.numel()}), send.device());
  }
  const at::ScalarType acc = detail::accumulation_type(send.scalar_type());
  if (acc != send.scalar_type()) {  // every engine sums 16-bit floats in float32
    at::Tensor wide = send.to(acc);
    do_all_reduce_sum_into(wide, wide);
    recv.copy_(wide);
    return;
  }
  do_all_reduce_sum_into(send, recv);
}

void Communicator::do_all_reduce_sum_into(const at::Tensor& send, const at::Tensor& recv) {
  if (send.data_ptr() == recv.data_ptr()) {
    do_all_reduce_sum(recv);
    return;
  }
  const auto counts = balanced_sizes(send.numel(), size());
  at::Tensor piece = scratch(kEnginePiece, counts[rank()], send.options());
  do_reduce_scatter_v(send, piece, counts, at::Tensor());
  do_all_gather_v(piece, recv, counts, OwnPiece::kCopy);
}

void Communicator::reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                                    const std::vector<int64_t>& counts, const at::Tensor& own) {
  const char* fn = "Communicator::reduce_scatter_v";
  detail::check_sizes(fn, "counts", counts, size(), rank());
  check_buffer(fn, "send", send, send, total(counts), rank());
  check_buffer(fn, "recv", recv, send, counts[rank()], rank());
  if (own.defined()) check_like(fn, "own", own, send, counts[rank()], rank());
  if (checked_mode()) check_agreement(describe("reduce_scatter_v", send, counts), send.device());
  const at::ScalarType acc = detail::accumulation_type(send.scalar_type());
  if (acc != send.scalar_type()) {  // every engine sums 16-bit floats in float32
    at::Tensor wide = at::empty_like(recv, recv.options().dtype(acc));
    do_reduce_scatter_v(send.to(acc), wide, counts, own.defined() ? own.to(acc) : own);
    recv.copy_(wide);
    return;
  }
  do_reduce_scatter_v(send, recv, counts, own);
}

void Communicator::all_to_all_v(const at::Tensor& send, const std::vector<int64_t>& send_counts,
                                const at::Tensor& recv, const std::vector<int64_t>& recv_counts,
                                OwnPiece own) {
  const char* fn = "Communicator::all_to_all_v";
  detail::check_sizes(fn, "send_counts", send_counts, size(), rank());
  detail::check_sizes(fn, "recv_counts", recv_counts, size(), rank());
  check_buffer(fn, "send", send, send, total(send_counts), rank());
  check_buffer(fn, "recv", recv, send, total(recv_counts), rank());
  if (checked_mode()) {
    // Per-rank counts differ legitimately; ranks must agree on the operation and dtype, and on
    // the pairs: what q sends to r is what r expects from q (checked by all ranks below).
    std::vector<int64_t> pair(2 * size());
    for (int q = 0; q < size(); ++q) {
      pair[2 * q] = send_counts[q];
      pair[2 * q + 1] = recv_counts[q];
    }
    at::Tensor mine = at::tensor(pair, at::kLong).to(send.device());
    at::Tensor all = at::empty({2 * size() * size()}, mine.options());
    check_agreement(describe("all_to_all_v", send, {}), send.device());
    do_all_gather_v(mine, all, std::vector<int64_t>(size(), 2 * size()), OwnPiece::kCopy);
    const at::Tensor m = all.cpu().view({size(), size(), 2});  // [rank, peer, send|recv]
    check_completed();
    for (int p = 0; p < size(); ++p) {
      for (int q = 0; q < size(); ++q) {
        const int64_t sent = m[p][q][0].item<int64_t>(), expected = m[q][p][1].item<int64_t>();
        if (sent != expected) {
          detail::fail(fn, "send_counts/recv_counts",
                       "rank " + std::to_string(q) + " to expect from rank " + std::to_string(p) +
                           " what it sends (" + std::to_string(sent) + " elements)",
                       std::to_string(expected) + " elements (checked mode)", rank());
        }
      }
    }
  }
  do_all_to_all_v(send, send_counts, recv, recv_counts, own);
}

void Communicator::barrier() {
  if (checked_mode()) check_agreement("barrier", home_device());
  do_barrier();
}

}  // namespace graphshard
