// The c10d engine's Communicator (comm.h) over a c10d backend (Gloo, NCCL): its collectives,
// each one of the backend's own or, on Gloo, direct messages between ranks, and the naming of a
// lost peer. Internal to core/comm: c10d_communicator.cpp holds the construction, the choice of
// path and the backend's own collectives; c10d_direct.cpp the direct messages and the probe that
// names a peer after one of the backend's own collectives failed.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include "c10d_blame.h"
#include "graphshard/c10d.h"

namespace graphshard {

class C10dCommunicator : public Communicator {
 public:
  using WorkPtr = c10::intrusive_ptr<c10d::Work>;
  using BackendPtr = c10::intrusive_ptr<c10d::Backend>;

  // Either `owned` (kept for the Communicator's life) or `lookup` (called per collective).
  C10dCommunicator(c10::intrusive_ptr<c10d::Backend> owned, BackendLookup lookup,
                   const c10::intrusive_ptr<c10d::Backend>& backend,
                   std::chrono::milliseconds timeout, c10::intrusive_ptr<c10d::Store> store);

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
        msg += " (peer rank " + std::to_string(lost[0]) + ", which had lost " + ranks_str(blamed) +
               " first: root cause " + ranks_str(blamed) + ")";
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

  // One of the backend's own collectives, `start` posting it on the backend given. Gloo's name
  // no peer when they fail: then find_lost_peer does, with its grace time kept off the
  // collective's own wait so that the whole still fails within the timeout.
  void native(const std::string& op, const std::function<WorkPtr(const BackendPtr&)>& start);

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
                       const std::vector<int64_t>& counts, OwnPiece own) override;
  void do_all_reduce_sum(const at::Tensor& buffer) override;
  void do_all_reduce_sum_into(const at::Tensor& send, const at::Tensor& recv) override;
  // Gloo's own all-reduce, in place.
  void native_all_reduce(const at::Tensor& buffer);
  void do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                           const std::vector<int64_t>& counts, const at::Tensor& own) override;
  void do_all_to_all_v(const at::Tensor& send, const std::vector<int64_t>& send_counts,
                       const at::Tensor& recv, const std::vector<int64_t>& recv_counts,
                       OwnPiece own) override;

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
  void find_lost_peer(const std::string& op, int tag, std::chrono::milliseconds grace);

  // Posts every send and receive of one collective (one tag), runs `local` (this rank's own
  // share, copied while the transport moves the rest), then waits on every transfer.
  void exchange(const std::string& op, const std::vector<Transfer>& sends,
                const std::vector<Transfer>& recvs, const std::function<void()>& local);

  // Every rank sends its piece to every peer and receives each peer's piece straight into its
  // place in recv: same bytes as a ring all-gather, no padding, no extra copy. `op` names the
  // collective in errors (the all-reduce of a small buffer is one of these).
  void all_gather_direct(const std::string& op, const at::Tensor& send, const at::Tensor& recv,
                         const std::vector<int64_t>& counts, OwnPiece own);

  void all_to_all(const std::string& op, const at::Tensor& send,
                  const std::vector<int64_t>& send_counts, const at::Tensor& recv,
                  const std::vector<int64_t>& recv_counts, OwnPiece own);

  // A latency-bound buffer in one exchange instead of two: every rank receives every rank's
  // buffer and adds them itself in rank order, ((x0 + x1) + x2) + ..., the order of the owners'
  // sums on the pipelined path, so the bits are the same on every rank and on either path.
  void all_reduce_one_exchange(const at::Tensor& send, const at::Tensor& recv);

  // A large buffer: rank r owns piece r (balanced); every rank sends chunk j of piece q to q,
  // which adds the chunk in rank order into recv as soon as all of it has arrived and sends the
  // sum on to every rank (the all-gather). The bytes of a ring all-reduce, 2(W-1)/W of the
  // buffer, and the additions of one chunk overlap the transfers of the others (Gloo's own ring
  // pipelines the same way; sequential, the two halves and the sum measured 1.3x its time).
  void all_reduce_pipelined(const at::Tensor& send, const at::Tensor& recv);

  // Every peer sends its piece r here (an all-to-all with (W-1)/W of the buffer on the wire
  // instead of an all-reduce's 2(W-1)/W); the pieces are summed in rank order, this rank's own
  // read in place (from `own` when defined, else from send), the first two added in one pass,
  // in own's shape.
  void reduce_scatter(const std::string& op, const at::Tensor& send, const at::Tensor& recv,
                      const std::vector<int64_t>& counts, const at::Tensor& own);

 public:
  void do_barrier() override;

 private:
  // The backend, held for one collective: the owned one, or what the lookup finds. A
  // CommError, not a peer's fault, when the group has been destroyed.
  c10::intrusive_ptr<c10d::Backend> backend(const std::string& op) const;

  c10::intrusive_ptr<c10d::Backend> owned_;
  BackendLookup lookup_;
  int rank_, size_;
  std::string engine_;
  std::chrono::milliseconds timeout_;
  BlameBoard blame_;  // the root cause of a lost peer, through the store (c10d_blame.h)
  bool direct_ = false;
  uint64_t next_tag_ = 1;
};

}  // namespace graphshard
