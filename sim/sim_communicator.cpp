// The four collectives as reads of the peers' buffers between two phase barriers: after the
// first every rank's buffers are published, after the second nobody reads them any more.
#include <ATen/ATen.h>

#include "sim.h"

namespace graphshard::sim {
namespace {

struct Buffers {
  const at::Tensor* send;
  const at::Tensor* recv;
  const std::vector<int64_t>* send_counts;
  const std::vector<int64_t>* recv_counts;
};

int64_t bytes_of(const at::Tensor& t, int64_t n) {
  return n * static_cast<int64_t>(t.element_size());
}

}  // namespace

class SimCommunicator : public Communicator {
 public:
  SimCommunicator(std::shared_ptr<SimWorld> world, int rank)
      : world_(std::move(world)), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return world_->size(); }
  std::chrono::milliseconds timeout() const override { return world_->timeout(); }
  std::string engine() const override { return "sim"; }

 protected:
  const Buffers& peer(const std::string& op, int q) const {
    return *static_cast<const Buffers*>(world_->payload(rank_, op, q));
  }

  // Runs the reads of a collective and then the second phase barrier, even when the reads
  // throw: a rank's buffers (and its payload on the stack) must outlive every peer's reads.
  template <typename F>
  void read_then_sync(const std::string& op, F&& reads) {
    std::exception_ptr error;
    try {
      reads();
    } catch (...) {
      error = std::current_exception();
    }
    try {
      world_->wait_all(rank_, op);
    } catch (...) {
      if (!error) throw;
    }
    if (error) std::rethrow_exception(error);
  }

  // All ranks compare every rank's counts with rank 0's, so all raise alike on a mismatch.
  void check_same_counts(const std::string& op) const {
    const auto& c0 = *peer(op, 0).send_counts;
    for (int q = 1; q < size(); ++q) {
      const auto& cq = *peer(op, q).send_counts;
      if (cq != c0) {
        std::string a, b;
        for (auto v : c0) a += std::to_string(v) + " ";
        for (auto v : cq) b += std::to_string(v) + " ";
        throw CommError(op, rank_, {0, q},
                        "graphshard::sim " + op + ": ranks disagree on counts: rank 0 has [ " + a +
                            "], rank " + std::to_string(q) + " has [ " + b + "] (seen on rank " +
                            std::to_string(rank_) + ")");
      }
    }
  }

  void do_all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                       const std::vector<int64_t>& counts, OwnPiece own) override {
    const std::string op = "all_gather_v";
    Buffers mine{&send, &recv, &counts, &counts};
    world_->enter(rank_, op, &mine);
    read_then_sync(op, [&] {
      check_same_counts(op);
      const auto off = offsets_of(counts);
      for (int q = 0; q < size(); ++q) {
        if (counts[q] == 0 || (q == rank_ && own == OwnPiece::kSkip)) continue;
        recv.narrow(0, off[q], counts[q]).copy_(*peer(op, q).send);
        world_->record(op, q, rank_, bytes_of(send, counts[q]));
      }
    });
  }

  void do_all_reduce_sum(const at::Tensor& buffer) override { do_all_reduce_sum_into(buffer, buffer); }

  // Every rank reads every rank's send, sums in rank order, and writes its recv once all have
  // read (so recv may be send itself).
  void do_all_reduce_sum_into(const at::Tensor& send, const at::Tensor& buffer) override {
    const std::string op = "all_reduce_sum";
    Buffers mine{&send, &buffer, nullptr, nullptr};
    world_->enter(rank_, op, &mine);
    at::Tensor acc;
    read_then_sync(op, [&] {
      const auto& first = *peer(op, 0).send;
      for (int q = 1; q < size(); ++q) {
        if (peer(op, q).send->numel() != first.numel()) {
          throw CommError(op, rank_, {0, q},
                          "graphshard::sim all_reduce_sum: ranks disagree on the buffer length: "
                          "rank 0 has " +
                              std::to_string(first.numel()) + ", rank " + std::to_string(q) +
                              " has " + std::to_string(peer(op, q).send->numel()));
        }
      }
      acc = first.clone();
      for (int q = 1; q < size(); ++q) acc.add_(*peer(op, q).send);
      const int w = size();
      world_->record(op, rank_, (rank_ + 1) % w,
                     2 * (w - 1) * bytes_of(buffer, buffer.numel()) / w);
    });
    buffer.copy_(acc);  // after the second barrier: nobody reads this buffer any more
  }

  void do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                           const std::vector<int64_t>& counts, const at::Tensor& own) override {
    const std::string op = "reduce_scatter_v";
    Buffers mine{&send, &recv, &counts, &counts};
    world_->enter(rank_, op, &mine);
    check_same_counts(op);
    const auto off = offsets_of(counts);
    const int64_t n = counts[rank_];
    if (n > 0) {
      // In own's shape when given: this rank's piece is read from it, not from send.
      const auto shape = own.defined() ? own.sizes().vec() : std::vector<int64_t>{n};
      auto piece = [&](int q) {
        return q == rank_ && own.defined() ? own
                                           : peer(op, q).send->narrow(0, off[rank_], n).view(shape);
      };
      at::Tensor acc = piece(0).clone(at::MemoryFormat::Contiguous);
      for (int q = 1; q < size(); ++q) acc.add_(piece(q));
      for (int q = 0; q < size(); ++q) world_->record(op, q, rank_, bytes_of(send, n));
      world_->wait_all(rank_, op);
      recv.view(shape).copy_(acc);
    } else {
      world_->wait_all(rank_, op);
    }
  }

  void do_all_to_all_v(const at::Tensor& send, const std::vector<int64_t>& send_counts,
                       const at::Tensor& recv, const std::vector<int64_t>& recv_counts,
                       OwnPiece own) override {
    const std::string op = "all_to_all_v";
    Buffers mine{&send, &recv, &send_counts, &recv_counts};
    world_->enter(rank_, op, &mine);
    read_then_sync(op, [&] {
      // Every rank checks every pair of counts, so a mismatch makes all ranks raise alike.
      for (int p = 0; p < size(); ++p) {
        for (int q = 0; q < size(); ++q) {
          const int64_t sent = (*peer(op, p).send_counts)[q];
          const int64_t expected = (*peer(op, q).recv_counts)[p];
          if (sent != expected) {
            throw CommError(op, rank_, {p, q},
                            "graphshard::sim all_to_all_v: rank " + std::to_string(p) + " sends " +
                                std::to_string(sent) + " elements to rank " + std::to_string(q) +
                                ", which expects recv_counts[" + std::to_string(p) +
                                "] = " + std::to_string(expected) + " (seen on rank " +
                                std::to_string(rank_) + ")");
          }
        }
      }
      const auto roff = offsets_of(recv_counts);
      for (int q = 0; q < size(); ++q) {
        const Buffers& b = peer(op, q);
        const int64_t n = recv_counts[q];
        if (n == 0 || (q == rank_ && own == OwnPiece::kSkip)) continue;
        const auto soff = offsets_of(*b.send_counts);
        recv.narrow(0, roff[q], n).copy_(b.send->narrow(0, soff[rank_], n));
        world_->record(op, q, rank_, bytes_of(send, n));
      }
    });
  }

  void do_barrier() override {
    const std::string op = "barrier";
    world_->enter(rank_, op, nullptr);
    world_->wait_all(rank_, op);
  }

 private:
  std::shared_ptr<SimWorld> world_;
  int rank_;
};

CommPtr SimWorld::communicator(int rank) {
  TORCH_CHECK_VALUE(rank >= 0 && rank < size_,
                    "graphshard::sim::SimWorld::communicator: rank: ", "expected a rank in [0, ",
                    size_, "), got ", rank);
  return std::make_shared<SimCommunicator>(shared_from_this(), rank);
}

}  // namespace graphshard::sim
