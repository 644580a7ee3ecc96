#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <exception>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include "../check.h"
#include "c10d_blame.h"
#include "graphshard/c10d.h"
#include "graphshard/shapes.h"

namespace graphshard {
namespace {

using WorkPtr = c10::intrusive_ptr<c10d::Work>;

class C10dCommunicator : public Communicator {
 public:
  // Either `owned` (kept for the Communicator's life) or `lookup` (called per collective).
  C10dCommunicator(c10::intrusive_ptr<c10d::Backend> owned, BackendLookup lookup,
                   const c10::intrusive_ptr<c10d::Backend>& backend,
                   std::chrono::milliseconds timeout, c10::intrusive_ptr<c10d::Store> store)
      : owned_(std::move(owned)),
        lookup_(std::move(lookup)),
        rank_(backend->getRank()),
        size_(backend->getSize()),
        engine_(backend->getBackendName()),
        timeout_(timeout),
        blame_(std::move(store), rank_, size_) {
    const char* choice = std::getenv("GRAPHSHARD_GLOO_COLLECTIVES");
    direct_ = engine() == "gloo" && !(choice && std::string(choice) == "native");
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::chrono::milliseconds timeout() const override { return timeout_; }
  std::string engine() const override { return engine_; }

 protected:
  // Runs `body`, turning any transport error into a CommError that names the operation, the
  // rank and the root cause of the failure (comm.h): `lost` is the peer the failing transfer
  // was with (empty when the transport does not say).
  template <typename F>
  void guarded(const std::string& op, const std::vector<int>& lost, F&& body) {
    try {
      body();
    } catch (const CommError&) {
      throw;
    } catch (const std::exception& e) {
      const std::string what = e.what();
      const std::vector<int> blamed = blame_.blame(lost);
      std::string msg = "graphshard::" + engine() + " " + op + " on rank " +
                        std::to_string(rank()) + " of " + std::to_string(size()) + " failed";
      if (!lost.empty() && blamed == lost) {
        msg += " (peer rank " + std::to_string(lost[0]) + ")";
      } else if (!lost.empty()) {
        msg += " (peer rank " + std::to_string(lost[0]) + ", which had lost " +
               ranks_str(blamed) + " first: root cause " + ranks_str(blamed) + ")";
      } else if (!blamed.empty()) {
        msg += " (the transport named no peer; root cause " + ranks_str(blamed) +
               ", reported by the ranks that lost it)";
      } else {
        msg += " (peer unknown: the transport named none and no rank reported one)";
      }
      msg += ": " + what.substr(0, what.find("\nException raised from"));
      const bool timed_out =
          what.find("imed out") != std::string::npos || what.find("imeout") != std::string::npos;
      if (timed_out) throw CommTimeout(op, rank(), blamed, msg);
      throw CommError(op, rank(), blamed, msg);
    }
  }

  void wait(const WorkPtr& work) { work->wait(timeout_); }

  // One of Gloo's own collectives, `start` posting it on the backend given. Those name no peer
  // when they fail: then find_lost_peer does, with the grace time kept off the collective's
  // own wait so that the whole still fails within the timeout.
  template <typename Start>
  void native(const std::string& op, Start&& start) {
    const int probe_tag = next_tags(1);  // every rank reserves it, so the tags stay in step
    const auto grace = probe_grace();
    std::exception_ptr failure;
    try {
      start(backend(op))->wait(timeout_ - grace);
    } catch (const CommError&) {
      throw;  // the group was destroyed: no peer to find
    } catch (const std::exception&) {
      failure = std::current_exception();
    }
    if (!failure) return;
    try {
      find_lost_peer(op, probe_tag, grace);
    } catch (const CommError& e) {  // the probe's error, and what Gloo's collective said
      std::string said;
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& f) {
        said = f.what();
      }
      const std::string msg = std::string(e.what()) + " (found by a probe after Gloo's own " + op +
                              " failed: " + said.substr(0, said.find("\nException raised from")) +
                              ")";
      if (dynamic_cast<const CommTimeout*>(&e)) throw CommTimeout(e.op(), e.rank(), e.peers(), msg);
      throw CommError(e.op(), e.rank(), e.peers(), msg);
    }
    guarded(op, {}, [&] { std::rethrow_exception(failure); });  // every peer answered
  }

  std::chrono::milliseconds probe_grace() const {
    return std::min(timeout_ / 4, std::chrono::milliseconds(1000));
  }

  // The tensor a Work is handed: an alias (same storage, a TensorImpl of its own). c10d may keep
  // a Work, and the tensors in it, past our wait (a Gloo barrier holds the works in flight when
  // it was posted, and its worker thread drops them later). The caller's tensor may be one that
  // Python sees: dropping the last reference to it takes the GIL, and a worker thread that does
  // so while the interpreter finalizes aborts the process ("terminate called without an active
  // exception" after a script's last line). An alias has no Python object.
  static at::Tensor held(const at::Tensor& t) { return t.alias(); }

  void do_all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                       const std::vector<int64_t>& counts, OwnPiece own) override {
    if (!direct() && detail::all_equal(counts)) {
      native("all_gather_v", [&](const auto& b) {
        at::Tensor out = held(recv), in = held(send);
        return b->_allgather_base(out, in);
      });
      return;
    }
    all_gather_direct("all_gather_v", send, recv, counts, own);
  }

  void do_all_reduce_sum(const at::Tensor& buffer) override {
    if (!direct()) {
      native_all_reduce(buffer);
      return;
    }
    do_all_reduce_sum_into(buffer, buffer);
  }

  // Direct messages: each element summed once, by its owner, in rank order, so every rank ends
  // bitwise equal (on either path below), and a lost peer is named. Two ranks, past the
  // latency-bound size: Gloo's own ring on recv (a copy of send unless in place). There the
  // ring's sum is the rank-order one (x0 + x1 and x1 + x0 are the same bits), every rank gets
  // the bits of the one rank that added each element, and the peer of a failure is the only one.
  // Measured (peer suite, reduce_tensor, W = 2, graphshard / anemoi, two runs each): 1-4 MiB
  // 0.65-1.05 against 1.06-1.68 on the pipelined path, 16 MiB 1.01-1.02 against 1.09-1.24.
  void do_all_reduce_sum_into(const at::Tensor& send, const at::Tensor& recv) override {
    const bool latency_bound = send.numel() * send.element_size() <= kLatencyBoundBytes;
    if (!direct() || size() == 1 || (size() == 2 && !latency_bound)) {
      if (send.data_ptr() != recv.data_ptr()) recv.copy_(send);
      if (size() == 1) return;
      native_all_reduce(recv);
    } else if (latency_bound) {
      all_reduce_one_exchange(send, recv);
    } else {
      all_reduce_pipelined(send, recv);
    }
  }

  // Gloo's own all-reduce, in place.
  void native_all_reduce(const at::Tensor& buffer) {
    native("all_reduce_sum", [&](const auto& b) {
      std::vector<at::Tensor> t{held(buffer)};
      c10d::AllreduceOptions opts;
      opts.reduceOp = c10d::ReduceOp::SUM;
      return b->allreduce(t, opts);
    });
  }

  void do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                           const std::vector<int64_t>& counts, const at::Tensor& own) override {
    if (!direct() && detail::all_equal(counts)) {
      if (own.defined()) {  // the native collective reads every piece from send
        const int64_t n = counts[rank()];
        send.narrow(0, rank() * n, n).view(own.sizes()).copy_(own);
      }
      native("reduce_scatter_v", [&](const auto& b) {
        at::Tensor out = held(recv), in = held(send);
        return b->_reduce_scatter_base(out, in);
      });
      return;
    }
    reduce_scatter("reduce_scatter_v", send, recv, counts, own);
  }

  void do_all_to_all_v(const at::Tensor& send, const std::vector<int64_t>& send_counts,
                       const at::Tensor& recv, const std::vector<int64_t>& recv_counts,
                       OwnPiece own) override {
    all_to_all("all_to_all_v", send, send_counts, recv, recv_counts, own);
  }

 private:
  struct Transfer {
    int peer;
    at::Tensor data;
  };

  // Gloo: direct messages for every collective but two, which take Gloo's own: the all-reduce
  // of a large buffer on two ranks (do_all_reduce_sum_into) and the all-to-all on three ranks
  // or more (all_to_all). Gloo's ring all-gather measured 2x slower on loopback than direct
  // messages (64 MiB, W=2: 78 ms vs 34 ms; W=4: 138 ms vs 63 ms). Its all-to-all moves the
  // bytes of the direct messages, but at W=4 on 2 cores took half their time (64 KiB, 200 calls
  // back to back: 1.2 vs 2.5 ms per call); at W=2 the direct messages are the faster (0.25-0.38
  // vs 0.47 ms). Either way a failure names the peer (find_lost_peer after Gloo's own).
  // NCCL keeps its native collectives. GRAPHSHARD_GLOO_COLLECTIVES=native selects Gloo's own
  // for every collective it has for the case (to compare them in one run).
  bool direct() const { return direct_; }

  // A collective's transfers, posted one at a time (so that a post to a peer already gone names
  // that peer) and waited on in any order, each wait naming the peer of a transfer that fails.
  // Whatever is still pending when the collective fails is withdrawn as the error leaves: the
  // transfers use the caller's buffers, which the unwinding frees. Empty transfers are skipped
  // on both sides.
  class Posted {
   public:
    Posted(C10dCommunicator& c, std::string op)
        : c_(c), op_(std::move(op)), backend_(c.backend(op_)) {}
    Posted(const Posted&) = delete;
    Posted& operator=(const Posted&) = delete;
    ~Posted() {
      for (auto& x : items_) {
        if (x.done) continue;
        try {
          x.work->abort();
        } catch (...) {  // already complete or failed: nothing to withdraw
        }
      }
    }
    // The transfer's index for wait(), -1 for an empty one.
    int recv(int peer, const at::Tensor& data, int tag) { return post(peer, data, tag, false); }
    int send(int peer, const at::Tensor& data, int tag) { return post(peer, data, tag, true); }
    void wait(int i) { wait(i, c_.timeout_); }
    void wait_all() {
      for (size_t i = 0; i < items_.size(); ++i) wait(static_cast<int>(i));
    }
    // Every transfer, all of them within `budget` from now.
    void wait_all(std::chrono::milliseconds budget) {
      const auto deadline = std::chrono::steady_clock::now() + budget;
      for (size_t i = 0; i < items_.size(); ++i) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        wait(static_cast<int>(i), std::max(left, std::chrono::milliseconds(1)));
      }
    }

   private:
    void wait(int i, std::chrono::milliseconds timeout) {
      if (i < 0 || items_[i].done) return;
      c_.guarded(op_, {items_[i].peer}, [&] { items_[i].work->wait(timeout); });
      items_[i].done = true;
    }
    int post(int peer, const at::Tensor& data, int tag, bool is_send) {
      if (data.numel() == 0) return -1;
      c_.guarded(op_, {peer}, [&] {
        std::vector<at::Tensor> t{data};  // a send or recv Work is ours alone: no alias
        items_.push_back(
            {peer, is_send ? backend_->send(t, peer, tag) : backend_->recv(t, peer, tag)});
      });
      return static_cast<int>(items_.size()) - 1;
    }
    struct Item {
      int peer;
      WorkPtr work;
      bool done = false;
    };
    C10dCommunicator& c_;
    std::string op_;
    c10::intrusive_ptr<c10d::Backend> backend_;  // for the collective's duration
    std::vector<Item> items_;
  };

  // `n` consecutive tags of this communicator's own (ranks call collectives in the same order).
  int next_tags(int n) {
    const int tag = static_cast<int>(next_tag_ & 0x3fffffff);
    next_tag_ += static_cast<uint64_t>(n);
    return tag;
  }

  // A collective that names no peer (native) failed here. A lost peer fails every survivor of
  // those collectives (each waits on data that passes through every rank), so every survivor
  // comes here: each sends a probe to every peer and waits for every peer's, all within
  // `grace`. The post to a peer whose connection is gone fails at once, a peer that stalled
  // never answers; either raises the CommError that names the peer (the blame as for any
  // direct transfer). Returns when every peer answered.
  void find_lost_peer(const std::string& op, int tag, std::chrono::milliseconds grace) {
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

  // Posts every receive and send of one collective (one tag), runs `local` (this rank's own
  // share, copied while the transport moves the rest), then waits on every transfer.
  template <typename Local>
  void exchange(const std::string& op, const std::vector<Transfer>& sends,
                const std::vector<Transfer>& recvs, Local&& local) {
    const int tag = next_tags(1);
    Posted posted(*this, op);
    for (const auto& x : recvs) posted.recv(x.peer, x.data, tag);
    for (const auto& x : sends) posted.send(x.peer, x.data, tag);
    std::exception_ptr local_error;
    try {
      local();
    } catch (...) {
      local_error = std::current_exception();  // after the waits: the transfers use our buffers
    }
    posted.wait_all();
    if (local_error) std::rethrow_exception(local_error);
  }

  // Every rank sends its piece to every peer and receives each peer's piece straight into its
  // place in recv: same bytes as a ring all-gather, no padding, no extra copy. `op` names the
  // collective in errors (the all-reduce of a small buffer is one of these).
  void all_gather_direct(const std::string& op, const at::Tensor& send, const at::Tensor& recv,
                         const std::vector<int64_t>& counts, OwnPiece own) {
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

  void all_to_all(const std::string& op, const at::Tensor& send,
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
      recv.narrow(0, recv_off[r], recv_counts[r])
          .copy_(send.narrow(0, send_off[r], send_counts[r]));
    });
  }

  // A latency-bound buffer in one exchange instead of two: every rank receives every rank's
  // buffer and adds them itself in rank order, ((x0 + x1) + x2) + ..., the order of the owners'
  // sums on the pipelined path, so the bits are the same on every rank and on either path.
  void all_reduce_one_exchange(const at::Tensor& send, const at::Tensor& recv) {
    const int w = size();
    const int64_t n = send.numel();
    at::Tensor all = scratch(kEngine, n * w, send.options());
    all_gather_direct("all_reduce_sum", send, all, std::vector<int64_t>(w, n), OwnPiece::kCopy);
    at::Tensor sum = recv;
    at::add_out(sum, all.narrow(0, 0, n), all.narrow(0, n, n));
    for (int q = 2; q < w; ++q) sum.add_(all.narrow(0, q * n, n));
  }

  // A large buffer: rank r owns piece r (balanced); every rank sends chunk j of piece q to q,
  // which adds the chunk in rank order into recv as soon as all of it has arrived and sends the
  // sum on to every rank (the all-gather). The bytes of a ring all-reduce, 2(W-1)/W of the
  // buffer, and the additions of one chunk overlap the transfers of the others (Gloo's own ring
  // pipelines the same way; sequential, the two halves and the sum measured 1.3x its time).
  void all_reduce_pipelined(const at::Tensor& send, const at::Tensor& recv) {
    constexpr int64_t kChunkBytes = 1 << 20;
    constexpr int64_t kMaxChunks = 8;
    const int w = size(), r = rank();
    const auto counts = balanced_sizes(send.numel(), w);
    const auto off = offsets_of(counts);
    const int64_t per_chunk = std::max<int64_t>(1, kChunkBytes / send.element_size());
    const int k = static_cast<int>(
        std::clamp<int64_t>((counts[0] + per_chunk - 1) / per_chunk, 1, kMaxChunks));
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

  // Every peer sends its piece r here (an all-to-all with (W-1)/W of the buffer on the wire
  // instead of an all-reduce's 2(W-1)/W); the pieces are summed in rank order, this rank's own
  // read in place (from `own` when defined, else from send), the first two added in one pass,
  // in own's shape.
  void reduce_scatter(const std::string& op, const at::Tensor& send, const at::Tensor& recv,
                      const std::vector<int64_t>& counts, const at::Tensor& own) {
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

 public:
  void do_barrier() override {
    native("barrier", [](const auto& b) { return b->barrier(); });
  }

 private:
  // The backend, held for one collective: the owned one, or what the lookup finds. A
  // CommError, not a peer's fault, when the group has been destroyed.
  c10::intrusive_ptr<c10d::Backend> backend(const std::string& op) const {
    if (owned_) return owned_;
    auto b = lookup_();
    if (!b) {
      throw CommError(op, rank_, {},
                      "graphshard::" + engine_ + " " + op + " on rank " + std::to_string(rank_) +
                          " of " + std::to_string(size_) +
                          ": the process group was destroyed (its backend is gone): a group "
                          "must outlive the calls on it, backward passes included");
    }
    return b;
  }

  c10::intrusive_ptr<c10d::Backend> owned_;
  BackendLookup lookup_;
  int rank_, size_;
  std::string engine_;
  std::chrono::milliseconds timeout_;
  BlameBoard blame_;  // the root cause of a lost peer, through the store (c10d_blame.h)
  bool direct_ = false;
  uint64_t next_tag_ = 1;
};

}  // namespace

namespace {

void ignore_sigpipe() {
  // Gloo writes to its sockets without MSG_NOSIGNAL: a write to a peer that has gone would kill
  // this process with SIGPIPE instead of failing the operation (Python ignores SIGPIPE, a C++
  // program does not). Ignored, the write fails with EPIPE and surfaces as a CommError. A
  // handler the program installed itself is left alone.
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    std::signal(SIGPIPE, SIG_IGN);
  }
}

}  // namespace

CommPtr make_c10d_communicator(c10::intrusive_ptr<c10d::Backend> backend,
                               std::chrono::milliseconds timeout,
                               c10::intrusive_ptr<c10d::Store> store) {
  TORCH_CHECK_VALUE(backend, "graphshard::make_c10d_communicator: backend: expected a backend, ",
                    "got null");
  ignore_sigpipe();
  return std::make_shared<C10dCommunicator>(backend, nullptr, backend, timeout, std::move(store));
}

CommPtr make_c10d_communicator(BackendLookup lookup, std::chrono::milliseconds timeout,
                               c10::intrusive_ptr<c10d::Store> store) {
  TORCH_CHECK_VALUE(lookup, "graphshard::make_c10d_communicator: lookup: expected a function, ",
                    "got none");
  const auto backend = lookup();
  TORCH_CHECK_VALUE(backend, "graphshard::make_c10d_communicator: lookup: expected a backend, ",
                    "got null");
  ignore_sigpipe();
  return std::make_shared<C10dCommunicator>(nullptr, std::move(lookup), backend, timeout,
                                            std::move(store));
}

}  // namespace graphshard
