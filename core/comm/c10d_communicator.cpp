#include "c10d_communicator.h"

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <exception>

#include "../check.h"

namespace graphshard {

C10dCommunicator::C10dCommunicator(c10::intrusive_ptr<c10d::Backend> owned, BackendLookup lookup,
                                   const c10::intrusive_ptr<c10d::Backend>& backend,
                                   std::chrono::milliseconds timeout,
                                   c10::intrusive_ptr<c10d::Store> store)
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

void C10dCommunicator::native(const std::string& op,
                              const std::function<WorkPtr(const BackendPtr&)>& start) {
  if (engine() != "gloo") {  // NCCL reports its faults itself (a probe there could hang)
    guarded(op, {}, [&] { wait(start(backend(op))); });
    return;
  }
  const int probe_tag = next_tags(1);  // every rank reserves it, so the tags stay in step
  const auto grace = probe_grace();
  std::exception_ptr failure;
  std::string said;  // what Gloo's collective said, kept for the probe's error
  try {
    start(backend(op))->wait(timeout_ - grace);
  } catch (const CommError&) {
    throw;  // the group was destroyed: no peer to find
  } catch (const std::exception& e) {
    failure = std::current_exception();
    said = e.what();
  }
  if (!failure) return;
  try {
    find_lost_peer(op, probe_tag, grace);
  } catch (const CommError& e) {
    const std::string msg = std::string(e.what()) + " (found by a probe after Gloo's own " + op +
                            " failed: " + said.substr(0, said.find("\nException raised from")) +
                            ")";
    if (dynamic_cast<const CommTimeout*>(&e)) throw CommTimeout(e.op(), e.rank(), e.peers(), msg);
    throw CommError(e.op(), e.rank(), e.peers(), msg);
  }
  guarded(op, {}, [&] { std::rethrow_exception(failure); });  // every peer answered
}

void C10dCommunicator::do_all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                                       const std::vector<int64_t>& counts, OwnPiece own) {
  if (!direct() && detail::all_equal(counts)) {
    native("all_gather_v", [&](const auto& b) {
      at::Tensor out = held(recv), in = held(send);
      return b->_allgather_base(out, in);
    });
    return;
  }
  all_gather_direct("all_gather_v", send, recv, counts, own);
}

void C10dCommunicator::do_all_reduce_sum(const at::Tensor& buffer) {
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
void C10dCommunicator::do_all_reduce_sum_into(const at::Tensor& send, const at::Tensor& recv) {
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

void C10dCommunicator::native_all_reduce(const at::Tensor& buffer) {
  native("all_reduce_sum", [&](const auto& b) {
    std::vector<at::Tensor> t{held(buffer)};
    c10d::AllreduceOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    return b->allreduce(t, opts);
  });
}

void C10dCommunicator::do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                                           const std::vector<int64_t>& counts,
                                           const at::Tensor& own) {
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

void C10dCommunicator::do_all_to_all_v(const at::Tensor& send,
                                       const std::vector<int64_t>& send_counts,
                                       const at::Tensor& recv,
                                       const std::vector<int64_t>& recv_counts, OwnPiece own) {
  all_to_all("all_to_all_v", send, send_counts, recv, recv_counts, own);
}

void C10dCommunicator::do_barrier() {
  native("barrier", [](const BackendPtr& b) { return b->barrier(); });
}

c10::intrusive_ptr<c10d::Backend> C10dCommunicator::backend(const std::string& op) const {
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
