// Gloo's direct messages (c10d_communicator.h): the collectives posted as sends and receives
// between ranks, and the probe that names a lost peer after one of Gloo's own failed.
#include <algorithm>
#include <exception>

#include "c10d_communicator.h"
#include "graphshard/shapes.h"

namespace graphshard {

void C10dCommunicator::find_lost_peer(const std::string& op, int tag,
                                      std::chrono::milliseconds grace) {
  const int w = size(), r = rank();
  const at::Tensor mine = at::zeros({1}, at::kFloat), theirs = at::empty({w}, at::kFloat);
  Posted posted(*this, op);
  for (int q = 0; q < w; ++q) {
    if (q != r) posted.recv(q, theirs.narrow(0, q, 1), tag);
  }
  for (int q = 0; q < w; ++q) {
    if (q != r) posted.send(q, mine, tag);
  }
  posted.wait_all(grace);
}

void C10dCommunicator::exchange(const std::string& op, const std::vector<Transfer>& sends,
                                const std::vector<Transfer>& recvs,
                                const std::function<void()>& local) {
  const int tag = next_tags(1);
  Posted posted(*this, op);
  // Sends first (receives first before). Measured, the cause not isolated (peer suite, same-run
  // A/B against receives first): W = 2, 1 MiB, every exchange row 0.65-1.98 -> 0.51-0.81 of
  // anemoi (its slow mode, ~3 ms calls, became rarer); 4-64 KiB within +-0.05; W = 4, 4 KiB-1 MiB,
  // 22 of 30 gather rows lower by 0.05-0.32, none higher.
  for (const auto& x : sends) posted.send(x.peer, x.data, tag);
  for (const auto& x : recvs) posted.recv(x.peer, x.data, tag);
  std::exception_ptr local_error;
  try {
    local();
  } catch (...) {
    local_error = std::current_exception();  // after the waits: the transfers use our buffers
  }
  posted.wait_all();
  if (local_error) std::rethrow_exception(local_error);
}

void C10dCommunicator::all_gather_direct(const std::string& op, const at::Tensor& send,
                                         const at::Tensor& recv, const std::vector<int64_t>& counts,
                                         OwnPiece own) {
  const int w = size(), r = rank();
  const auto off = offsets_of(counts);
  std::vector<Transfer> sends, recvs;
  for (int q = 0; q < w; ++q) {
    if (q == r) continue;
    sends.push_back({q, send});
    recvs.push_back({q, recv.narrow(0, off[q], counts[q])});
  }
  exchange(op, sends, recvs, [&] {
    if (own == OwnPiece::kCopy) recv.narrow(0, off[r], counts[r]).copy_(send);
  });
}

void C10dCommunicator::all_to_all(const std::string& op, const at::Tensor& send,
                                  const std::vector<int64_t>& send_counts, const at::Tensor& recv,
                                  const std::vector<int64_t>& recv_counts, OwnPiece own) {
  const int w = size(), r = rank();
  if (!direct() || w >= 3) {
    native(op, [&](const auto& b) {
      at::Tensor out = held(recv), in = held(send);
      std::vector<int64_t> oc = recv_counts, ic = send_counts;
      return b->alltoall_base(out, in, oc, ic);
    });
    return;
  }
  const auto send_off = offsets_of(send_counts), recv_off = offsets_of(recv_counts);
  std::vector<Transfer> sends, recvs;
  for (int q = 0; q < w; ++q) {
    if (q == r) continue;
    sends.push_back({q, send.narrow(0, send_off[q], send_counts[q])});
    recvs.push_back({q, recv.narrow(0, recv_off[q], recv_counts[q])});
  }
  exchange(op, sends, recvs, [&] {
    if (own == OwnPiece::kSkip) return;
    recv.narrow(0, recv_off[r], recv_counts[r]).copy_(send.narrow(0, send_off[r], send_counts[r]));
  });
}

void C10dCommunicator::all_reduce_one_exchange(const at::Tensor& send, const at::Tensor& recv) {
  const int w = size();
  const int64_t n = send.numel();
  at::Tensor all = scratch(kEngine, n * w, send.options());
  all_gather_direct("all_reduce_sum", send, all, std::vector<int64_t>(w, n), OwnPiece::kCopy);
  at::Tensor sum = recv;
  at::add_out(sum, all.narrow(0, 0, n), all.narrow(0, n, n));
  for (int q = 2; q < w; ++q) sum.add_(all.narrow(0, q * n, n));
}

void C10dCommunicator::all_reduce_pipelined(const at::Tensor& send, const at::Tensor& recv) {
  constexpr int64_t kChunkBytes = 1 << 20;
  constexpr int64_t kMaxChunks = 8;
  const int w = size(), r = rank();
  const auto counts = balanced_sizes(send.numel(), w);
  const auto off = offsets_of(counts);
  const int64_t per_chunk = std::max<int64_t>(1, kChunkBytes / send.element_size());
  const int k =
      static_cast<int>(std::clamp<int64_t>((counts[0] + per_chunk - 1) / per_chunk, 1, kMaxChunks));
  // Chunk j of piece q of t, and chunk j of the piece r that rank q sent here (staging slot q).
  auto chunk = [&](const at::Tensor& t, int q, int j) {
    const auto sub = offsets_of(balanced_sizes(counts[q], k));
    return t.narrow(0, off[q] + sub[j], sub[j + 1] - sub[j]);
  };
  const int64_t n = counts[r];
  const at::Tensor staging = scratch(kEngine, n * w, send.options());
  const auto sub_r = offsets_of(balanced_sizes(n, k));
  auto from = [&](int q, int j) {
    return staging.narrow(0, q * n + sub_r[j], sub_r[j + 1] - sub_r[j]);
  };
  // In place, the own piece is read after recv's piece r has been written: keep a copy.
  const bool in_place = send.data_ptr() == recv.data_ptr();
  if (in_place) staging.narrow(0, r * n, n).copy_(send.narrow(0, off[r], n));
  const int tag = next_tags(2 * k);  // tag + j: chunk j to its owner; tag + k + j: its sum
  Posted posted(*this, "all_reduce_sum");
  std::vector<std::vector<int>> arrivals(k, std::vector<int>(w, -1));
  for (int j = 0; j < k; ++j) {
    for (int q = 0; q < w; ++q) {
      if (q == r) continue;
      arrivals[j][q] = posted.recv(q, from(q, j), tag + j);
      posted.recv(q, chunk(recv, q, j), tag + k + j);
    }
  }
  for (int j = 0; j < k; ++j) {
    for (int q = 0; q < w; ++q) {
      if (q != r) posted.send(q, chunk(send, q, j), tag + j);
    }
  }
  for (int j = 0; j < k; ++j) {
    for (int q = 0; q < w; ++q) posted.wait(arrivals[j][q]);
    const at::Tensor own = in_place ? from(r, j) : chunk(send, r, j);
    auto part = [&](int q) { return q == r ? own : from(q, j); };
    at::Tensor sum = chunk(recv, r, j);
    at::add_out(sum, part(0), part(1));
    for (int q = 2; q < w; ++q) sum.add_(part(q));
    for (int q = 0; q < w; ++q) {
      if (q != r) posted.send(q, sum, tag + k + j);
    }
  }
  posted.wait_all();
}

void C10dCommunicator::reduce_scatter(const std::string& op, const at::Tensor& send,
                                      const at::Tensor& recv, const std::vector<int64_t>& counts,
                                      const at::Tensor& own) {
  const int w = size(), r = rank();
  const int64_t n = counts[r];
  const auto off = offsets_of(counts);
  at::Tensor staging = scratch(kEngine, n * w, send.options());
  all_to_all(op, send, counts, staging, std::vector<int64_t>(w, n), OwnPiece::kSkip);
  if (n == 0) return;
  const at::Tensor mine = own.defined() ? own : send.narrow(0, off[r], n);
  auto piece = [&](int q) {
    return q == r ? mine : staging.narrow(0, q * n, n).view(mine.sizes());
  };
  at::Tensor out = recv.view(mine.sizes());
  if (w == 1) {
    out.copy_(piece(0));
    return;
  }
  at::add_out(out, piece(0), piece(1));
  for (int q = 2; q < w; ++q) out.add_(piece(q));
}

}  // namespace graphshard
