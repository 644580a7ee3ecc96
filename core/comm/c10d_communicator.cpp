#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include "graphshard/c10d.h"

namespace graphshard {
namespace {

using WorkPtr = c10::intrusive_ptr<c10d::Work>;

class C10dCommunicator : public Communicator {
 public:
  C10dCommunicator(c10::intrusive_ptr<c10d::Backend> backend, std::chrono::milliseconds timeout)
      : backend_(std::move(backend)), timeout_(timeout) {}

  int rank() const override { return backend_->getRank(); }
  int size() const override { return backend_->getSize(); }
  std::chrono::milliseconds timeout() const override { return timeout_; }
  std::string engine() const override { return backend_->getBackendName(); }

 protected:
  // Runs `body`, turning any transport error into a CommError that names operation, rank and,
  // when known, the peer.
  template <typename F>
  void guarded(const std::string& op, const std::vector<int>& peers, F&& body) {
    try {
      body();
    } catch (const CommError&) {
      throw;
    } catch (const std::exception& e) {
      const std::string what = e.what();
      std::string msg = "graphshard::" + engine() + " " + op + " on rank " +
                        std::to_string(rank()) + " of " + std::to_string(size()) + " failed";
      if (peers.size() == 1) msg += " (peer rank " + std::to_string(peers[0]) + ")";
      msg += ": " + what.substr(0, what.find("\nException raised from"));
      const bool timed_out = what.find("imed out") != std::string::npos ||
                             what.find("imeout") != std::string::npos;
      if (timed_out) throw CommTimeout(op, rank(), peers, msg);
      throw CommError(op, rank(), peers, msg);
    }
  }

  void wait(const WorkPtr& work) { work->wait(timeout_); }

  void do_all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                       const std::vector<int64_t>& counts) override {
    const int w = size(), r = rank();
    bool even = true;
    for (int64_t c : counts) even = even && c == counts[0];
    // Gloo's own all-gather (a ring) measured 2x slower on loopback than direct messages
    // (64 MiB, W=2: 78 ms vs 34 ms; W=4: 138 ms vs 63 ms), so Gloo always takes the p2p path;
    // NCCL's all-gather is the fast path for even counts there.
    if (even && engine() != "gloo") {
      guarded("all_gather_v", {}, [&] {
        at::Tensor out = recv, in = send;
        wait(backend_->_allgather_base(out, in));
      });
      return;
    }
    // Uneven: every rank sends its piece to every peer and receives each peer's piece straight
    // into its place in recv. Same bytes as a ring all-gather, no padding, no extra copy.
    const auto off = offsets_of(counts);
    const int tag = static_cast<int>(next_tag_++ & 0x3fffffff);
    std::vector<std::pair<int, WorkPtr>> works;
    recv.narrow(0, off[r], counts[r]).copy_(send);
    const bool coalesce = backend_->supportsCoalescing();
    guarded("all_gather_v", {}, [&] {
      if (coalesce) backend_->startCoalescing();
      for (int k = 1; k < w; ++k) {
        const int to = (r + k) % w, from = (r - k + w) % w;
        if (counts[from] > 0) {
          std::vector<at::Tensor> t{recv.narrow(0, off[from], counts[from])};
          works.emplace_back(from, backend_->recv(t, from, tag));
        }
        if (counts[r] > 0) {
          std::vector<at::Tensor> t{send};
          works.emplace_back(to, backend_->send(t, to, tag));
        }
      }
      if (coalesce) {
        auto group = backend_->endCoalescing();
        if (group) works.emplace_back(-1, group);
      }
    });
    for (auto& [peer, work] : works) {
      guarded("all_gather_v", peer >= 0 ? std::vector<int>{peer} : std::vector<int>{},
              [&] { wait(work); });
    }
  }

  void do_all_reduce_sum(const at::Tensor& buffer) override {
    guarded("all_reduce_sum", {}, [&] {
      std::vector<at::Tensor> t{buffer};
      c10d::AllreduceOptions opts;
      opts.reduceOp = c10d::ReduceOp::SUM;
      wait(backend_->allreduce(t, opts));
    });
  }

  void do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                           const std::vector<int64_t>& counts) override {
    const int w = size(), r = rank();
    bool even = true;
    for (int64_t c : counts) even = even && c == counts[0];
    if (even && engine() == "nccl") {
      guarded("reduce_scatter_v", {}, [&] {
        at::Tensor out = recv, in = send;
        wait(backend_->_reduce_scatter_base(out, in));
      });
      return;
    }
    // All-to-all-v delivers every rank's piece r here; summing them in rank order gives the
    // reduce-scatter with (W-1)/W of the buffer on the wire instead of an all-reduce's 2(W-1)/W.
    const int64_t n = counts[r];
    at::Tensor staging = at::empty({n * w}, send.options());
    std::vector<int64_t> recv_counts(w, n);
    all_to_all("reduce_scatter_v", send, counts, staging, recv_counts);
    if (n == 0) return;
    recv.copy_(staging.narrow(0, 0, n));
    for (int q = 1; q < w; ++q) recv.add_(staging.narrow(0, q * n, n));
  }

  void do_all_to_all_v(const at::Tensor& send, const std::vector<int64_t>& send_counts,
                       const at::Tensor& recv, const std::vector<int64_t>& recv_counts) override {
    all_to_all("all_to_all_v", send, send_counts, recv, recv_counts);
  }

  void all_to_all(const std::string& op, const at::Tensor& send,
                  const std::vector<int64_t>& send_counts, const at::Tensor& recv,
                  const std::vector<int64_t>& recv_counts) {
    guarded(op, {}, [&] {
      at::Tensor out = recv, in = send;
      std::vector<int64_t> oc = recv_counts, ic = send_counts;
      wait(backend_->alltoall_base(out, in, oc, ic));
    });
  }

  void do_barrier() override {
    guarded("barrier", {}, [&] { wait(backend_->barrier()); });
  }

 private:
  c10::intrusive_ptr<c10d::Backend> backend_;
  std::chrono::milliseconds timeout_;
  uint64_t next_tag_ = 1;
};

}  // namespace

CommPtr make_c10d_communicator(c10::intrusive_ptr<c10d::Backend> backend,
                               std::chrono::milliseconds timeout) {
  TORCH_CHECK_VALUE(backend, "graphshard::make_c10d_communicator: backend: expected a backend, ",
                    "got null");
  return std::make_shared<C10dCommunicator>(std::move(backend), timeout);
}

}  // namespace graphshard
