#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <set>
#include <sstream>
#include <unordered_map>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include "../check.h"
#include "graphshard/c10d.h"
#include "graphshard/shapes.h"

namespace graphshard {
namespace {

using WorkPtr = c10::intrusive_ptr<c10d::Work>;

class C10dCommunicator : public Communicator {
 public:
  C10dCommunicator(c10::intrusive_ptr<c10d::Backend> backend, std::chrono::milliseconds timeout,
                   c10::intrusive_ptr<c10d::Store> store)
      : backend_(std::move(backend)), timeout_(timeout), store_(std::move(store)) {
    const char* choice = std::getenv("GRAPHSHARD_GLOO_COLLECTIVES");
    direct_ = engine() == "gloo" && !(choice && std::string(choice) == "native");
    if (store_) blame_prefix_ = "graphshard/blame/" + std::to_string(store_index(store_.get())) + "/";
  }

  int rank() const override { return backend_->getRank(); }
  int size() const override { return backend_->getSize(); }
  std::chrono::milliseconds timeout() const override { return timeout_; }
  std::string engine() const override { return backend_->getBackendName(); }

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
      const std::vector<int> blamed = blame(lost);
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

  // ---- Root cause through the store (comm.h) ------------------------------------------------
  // The first rank to lose a peer posts whom it blames, under its own rank's key, before it
  // raises; a rank that later loses a peer reads that peer's post: a peer that posted left
  // because of what it blamed, so the blame passes on to that (transitively). Why the store: it
  // outlives any one peer's sockets (only rank 0's death takes it), and a post is complete
  // before the poster raises, so before its sockets close and anyone can see it gone.
  std::vector<int> blame(const std::vector<int>& lost) {
    if (!store_) return lost;
    std::vector<int> roots;
    try {
      std::set<int> seen{rank()};
      if (!lost.empty()) {
        for (int p : lost) expand(p, seen, roots);
      } else {  // the transport named no peer: take what the others reported
        for (int q = 0; q < size(); ++q) {
          if (q == rank()) continue;
          for (int p : posted_blame(q)) expand(p, seen, roots);
        }
      }
      std::sort(roots.begin(), roots.end());
      if (!posted_ && !roots.empty()) {
        posted_ = true;
        std::ostringstream v;
        for (size_t i = 0; i < roots.size(); ++i) v << (i ? "," : "") << roots[i];
        const std::string text = v.str();
        store_->set(blame_prefix_ + std::to_string(rank()),
                    std::vector<uint8_t>(text.begin(), text.end()));
      }
    } catch (const std::exception&) {  // the store went with rank 0: blame what we saw
      return lost;
    }
    return roots;
  }

  // Rank p is a root cause unless it posted a blame of ranks not yet seen (a cycle of ranks that
  // timed out on each other ends at the first rank met twice).
  void expand(int p, std::set<int>& seen, std::vector<int>& roots) {
    if (!seen.insert(p).second) return;
    std::vector<int> next;
    for (int q : posted_blame(p))
      if (!seen.count(q)) next.push_back(q);
    if (next.empty()) {
      if (std::find(roots.begin(), roots.end(), p) == roots.end()) roots.push_back(p);
      return;
    }
    for (int q : next) expand(q, seen, roots);
  }

  std::vector<int> posted_blame(int q) {
    const std::string key = blame_prefix_ + std::to_string(q);
    if (!store_->check({key})) return {};
    const auto bytes = store_->get(key);
    std::vector<int> out;
    std::stringstream in(std::string(bytes.begin(), bytes.end()));
    for (std::string item; std::getline(in, item, ',');) {
      const int x = std::atoi(item.c_str());
      if (x >= 0 && x < size()) out.push_back(x);
    }
    return out;
  }

  static std::string ranks_str(const std::vector<int>& ranks) {
    if (ranks.size() == 1) return "rank " + std::to_string(ranks[0]);
    std::string s = "ranks [";
    for (size_t i = 0; i < ranks.size(); ++i) s += (i ? ", " : "") + std::to_string(ranks[i]);
    return s + "]";
  }

  // Communicators made over one store, counted in the order this process made them: ranks make
  // them in the same order, so the count keys one communicator's posts apart from another's.
  static int store_index(const c10d::Store* store) {
    static std::mutex m;
    static std::unordered_map<const c10d::Store*, int> made;
    std::lock_guard<std::mutex> lk(m);
    return made[store]++;
  }

  void wait(const WorkPtr& work) { work->wait(timeout_); }

  void do_all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                       const std::vector<int64_t>& counts, OwnPiece own) override {
    const int w = size(), r = rank();
    if (!direct() && detail::all_equal(counts)) {
      guarded("all_gather_v", {}, [&] {
        at::Tensor out = recv, in = send;
        wait(backend_->_allgather_base(out, in));
      });
      return;
    }
    // Every rank sends its piece to every peer and receives each peer's piece straight into its
    // place in recv: same bytes as a ring all-gather, no padding, no extra copy.
    const auto off = offsets_of(counts);
    std::vector<Transfer> sends, recvs;
    for (int q = 0; q < w; ++q) {
      if (q == r) continue;
      sends.push_back({q, send});
      recvs.push_back({q, recv.narrow(0, off[q], counts[q])});
    }
    exchange("all_gather_v", sends, recvs, [&] {
      if (own == OwnPiece::kCopy) recv.narrow(0, off[r], counts[r]).copy_(send);
    });
  }

  void do_all_reduce_sum(const at::Tensor& buffer) override {
    if (!direct()) {
      guarded("all_reduce_sum", {}, [&] {
        std::vector<at::Tensor> t{buffer};
        c10d::AllreduceOptions opts;
        opts.reduceOp = c10d::ReduceOp::SUM;
        wait(backend_->allreduce(t, opts));
      });
      return;
    }
    // Reduce-scatter then all-gather, both direct: the ring's bytes, each element summed once
    // (by its owner, in rank order) so every rank ends bitwise equal, and a lost peer is named.
    const auto counts = balanced_sizes(buffer.numel(), size());
    at::Tensor piece = scratch(kEnginePiece, counts[rank()], buffer.options());
    reduce_scatter("all_reduce_sum", buffer, piece, counts, at::Tensor());
    do_all_gather_v(piece, buffer, counts, OwnPiece::kCopy);
  }

  void do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                           const std::vector<int64_t>& counts, const at::Tensor& own) override {
    if (!direct() && detail::all_equal(counts)) {
      guarded("reduce_scatter_v", {}, [&] {
        if (own.defined()) {  // the native collective reads every piece from send
          const int64_t n = counts[rank()];
          send.narrow(0, rank() * n, n).view(own.sizes()).copy_(own);
        }
        at::Tensor out = recv, in = send;
        wait(backend_->_reduce_scatter_base(out, in));
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

  // Gloo: direct messages for every collective. Its ring all-gather measured 2x slower on
  // loopback than direct messages (64 MiB, W=2: 78 ms vs 34 ms; W=4: 138 ms vs 63 ms), and a
  // wait on one peer's message names the peer that failed. NCCL keeps its native collectives.
  // GRAPHSHARD_GLOO_COLLECTIVES=native selects Gloo's own (to compare them in one run).
  bool direct() const { return direct_; }

  // Posts every receive and send of one collective (one tag), runs `local` (this rank's own
  // share, copied while the transport moves the rest), then waits on each transfer, naming the
  // peer of one that fails. Empty transfers are skipped on both sides.
  template <typename Local>
  void exchange(const std::string& op, const std::vector<Transfer>& sends,
                const std::vector<Transfer>& recvs, Local&& local) {
    const int tag = static_cast<int>(next_tag_++ & 0x3fffffff);
    std::vector<std::pair<int, WorkPtr>> works;
    // Transfers still pending when this call fails would write into (or read from) buffers the
    // caller frees as the error unwinds: withdraw them before throwing.
    auto withdraw = [&](size_t from) {
      for (size_t j = from; j < works.size(); ++j) {
        try {
          works[j].second->abort();
        } catch (...) {  // already complete or failed: nothing to withdraw
        }
      }
    };
    try {
      // One post at a time, so that a post to a peer already gone names that peer.
      for (const auto& x : recvs) {
        if (x.data.numel() == 0) continue;
        guarded(op, {x.peer}, [&] {
          std::vector<at::Tensor> t{x.data};
          works.emplace_back(x.peer, backend_->recv(t, x.peer, tag));
        });
      }
      for (const auto& x : sends) {
        if (x.data.numel() == 0) continue;
        guarded(op, {x.peer}, [&] {
          std::vector<at::Tensor> t{x.data};
          works.emplace_back(x.peer, backend_->send(t, x.peer, tag));
        });
      }
    } catch (...) {
      withdraw(0);
      throw;
    }
    std::exception_ptr local_error;
    try {
      local();
    } catch (...) {
      local_error = std::current_exception();  // after the waits: the transfers use our buffers
    }
    for (size_t i = 0; i < works.size(); ++i) {
      try {
        guarded(op, {works[i].first}, [&] { wait(works[i].second); });
      } catch (...) {
        withdraw(i + 1);
        throw;
      }
    }
    if (local_error) std::rethrow_exception(local_error);
  }

  void all_to_all(const std::string& op, const at::Tensor& send,
                  const std::vector<int64_t>& send_counts, const at::Tensor& recv,
                  const std::vector<int64_t>& recv_counts, OwnPiece own) {
    const int w = size(), r = rank();
    if (!direct()) {
      guarded(op, {}, [&] {
        at::Tensor out = recv, in = send;
        std::vector<int64_t> oc = recv_counts, ic = send_counts;
        wait(backend_->alltoall_base(out, in, oc, ic));
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
    guarded("barrier", {}, [&] { wait(backend_->barrier()); });
  }

 private:
  c10::intrusive_ptr<c10d::Backend> backend_;
  std::chrono::milliseconds timeout_;
  c10::intrusive_ptr<c10d::Store> store_;  // may be null: blame what the transport names
  std::string blame_prefix_;
  bool posted_ = false;  // the first blame stands: later errors are its consequences
  bool direct_ = false;
  uint64_t next_tag_ = 1;
};

}  // namespace

CommPtr make_c10d_communicator(c10::intrusive_ptr<c10d::Backend> backend,
                               std::chrono::milliseconds timeout,
                               c10::intrusive_ptr<c10d::Store> store) {
  TORCH_CHECK_VALUE(backend, "graphshard::make_c10d_communicator: backend: expected a backend, ",
                    "got null");
  // Gloo writes to its sockets without MSG_NOSIGNAL: a write to a peer that has gone would kill
  // this process with SIGPIPE instead of failing the operation (Python ignores SIGPIPE, a C++
  // program does not). Ignored, the write fails with EPIPE and surfaces as a CommError. A
  // handler the program installed itself is left alone.
  struct sigaction current {};
  if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    std::signal(SIGPIPE, SIG_IGN);
  }
  return std::make_shared<C10dCommunicator>(std::move(backend), timeout, std::move(store));
}

}  // namespace graphshard
