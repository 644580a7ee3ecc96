// The Communicator: the one interface through which every primitive communicates.
//
// Engines: SimCommunicator (sim/, W threads in one process), C10dCommunicator (any c10d
// Backend: Gloo on CPU, NCCL on GPU). The primitives never know which engine runs them.
//
// Buffer contract, shared by every collective:
//  - every buffer is a 1-D contiguous tensor; all buffers of one call have the same dtype and
//    device; counts are in ELEMENTS, one entry per rank, and may be zero or uneven;
//  - pieces are laid out in rank order: piece q starts at sum(counts[:q]);
//  - sums are taken in the buffer's dtype (callers upcast 16-bit floats first, see primitives);
//    every rank receives a bitwise-identical sum. The simulated engine and Gloo with direct
//    messages (the default) add rank contributions in rank order, ((x0 + x1) + x2) + ...;
//    Gloo's own collectives (GRAPHSHARD_GLOO_COLLECTIVES=native) and NCCL's (its all-reduce,
//    its even reduce-scatter) give every rank the same bits too, but add in their own order;
//  - calls are stream-ordered on CUDA tensors (no host synchronisation is part of the contract);
//    on CPU they return when the output is ready;
//  - every call validates its buffers before communicating (same checks on every rank) and
//    raises CommError naming the operation, rank and peer when a peer fails, dies or does not
//    arrive within timeout().
//
// Who is blamed. When a rank fails, others often fall after it: a survivor that loses rank q
// may see first, not q, but a third rank p that raised because of q and has exited since.
// CommError::peers() is the ROOT CAUSE where it can be known: the ranks that failed for a
// reason of their own (died, raised something other than a CommError, did not arrive within
// the timeout), never a rank that left because it had lost one of those. How each engine knows:
//  - sim: the world records why each rank ended; a rank that ended with a CommError is a
//    consequence, the others are causes (a timeout blames the ranks that had not arrived);
//  - gloo (c10d engine with a store): a rank that loses a peer posts whom it blames to the
//    store before raising (so before its sockets close); a survivor that loses peer p reads
//    p's post and, if p posted one, blames what p blamed (transitively);
//  - without a store, or where the store is gone (rank 0, its host, died), or NCCL: the peer
//    the failing transfer was with.
// Gloo's own collectives name no peer: after one fails, each survivor probes its peers (one whose
// connection is gone, or that never answers, is lost). When nothing names a peer, peers() is
// empty ("peer unknown"). A rank that times out on a peer that is itself still waiting on
// another (a chain of waits) blames the peer it waited on unless that peer posted first.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace graphshard {

// A collective failed because of a peer (error, death, timeout) or the transport.
class CommError : public std::runtime_error {
 public:
  CommError(std::string op, int rank, std::vector<int> peers, const std::string& message)
      : std::runtime_error(message), op_(std::move(op)), rank_(rank), peers_(std::move(peers)) {}
  const std::string& op() const { return op_; }
  int rank() const { return rank_; }
  // The ranks blamed: the root cause of the failure (see "Who is blamed" above); empty when
  // unknown.
  const std::vector<int>& peers() const { return peers_; }

 private:
  std::string op_;
  int rank_;
  std::vector<int> peers_;
};

// A collective did not complete within the communicator's timeout.
class CommTimeout : public CommError {
 public:
  using CommError::CommError;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  // What all_gather_v and all_to_all_v do with this rank's own piece. kCopy: moved from send
  // to recv like every other piece. kSkip: the caller places that piece itself, straight from
  // its source into its final layout, so piece `rank` of recv is unspecified afterwards (and,
  // for all_to_all_v, piece `rank` of send need not be filled). Why: when recv is only a
  // staging buffer to be unpacked, the own piece would otherwise be copied twice.
  enum class OwnPiece { kCopy, kSkip };

  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::chrono::milliseconds timeout() const = 0;
  // "sim", "gloo", "nccl", ...
  virtual std::string engine() const = 0;
  // Where this engine's own exchanges live when a call has no tensor to say so (the checked
  // mode's agreement before a barrier): the CPU, or the NCCL engine's GPU.
  virtual at::Device home_device() const { return at::kCPU; }
  // Raises CommError/CommTimeout if a collective already issued has failed. Only an engine
  // whose collectives complete asynchronously (NCCL) can have anything to report; the others
  // raised before returning. Checked mode calls it once an exchange's result is on the host,
  // so that memory a failed exchange never wrote is not read as the peers' answer.
  virtual void check_completed() {}

  // recv = concat over q of (rank q's send); counts[q] = rank q's send length.
  void all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                    const std::vector<int64_t>& counts, OwnPiece own = OwnPiece::kCopy);
  // The two sums below add float16/bfloat16 in float32 and round once, on every engine
  // (SPEC: accumulation at least float32); a copy of the buffers in float32 is what crosses
  // the wire. Why: W - 1 roundings in a 10- or 7-bit mantissa lose about log2(W) bits.
  // buffer = elementwise sum over ranks of buffer, in place.
  void all_reduce_sum(const at::Tensor& buffer);
  // recv = elementwise sum over ranks of send; send is not modified (recv may be send itself:
  // in place). Why a form of its own: the reduce primitive returns a new tensor and leaves its
  // input alone, and an engine that reads send and writes recv directly saves a copy of send.
  void all_reduce_sum(const at::Tensor& send, const at::Tensor& recv);
  // Buffers of at most this many bytes are latency-bound: an engine may move them in fewer,
  // larger rounds (Gloo's direct all-reduce: one all-gather and a local sum in rank order,
  // instead of a reduce-scatter and an all-gather).
  static constexpr int64_t kLatencyBoundBytes = 256 << 10;
  // recv = sum over q of piece r of rank q's send, pieces cut by counts (same on all ranks),
  // added in rank order. `own`, when defined: this rank's own contribution (counts[r] elements
  // of send's dtype and device, any shape and strides; recv is read as that shape), used in
  // place of send's piece r, which is then neither read nor kept (an engine may overwrite it).
  // Why: a caller that must pack the pieces it sends (cut along a non-leading dim) need not
  // copy its own piece, which never crosses the wire.
  void reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                        const std::vector<int64_t>& counts, const at::Tensor& own = {});
  // Rank r sends piece q of send (send_counts[q] elements) to rank q, and receives
  // recv_counts[q] elements from rank q into piece q of recv.
  void all_to_all_v(const at::Tensor& send, const std::vector<int64_t>& send_counts,
                    const at::Tensor& recv, const std::vector<int64_t>& recv_counts,
                    OwnPiece own = OwnPiece::kCopy);
  void barrier();

  // Checked mode (see set_checked_mode): every rank contributes `descriptor` (what it is about
  // to do: operation, dims, sizes, dtype, shapes); if any two differ, every rank raises one
  // c10::ValueError listing each rank's view. Exchanged on `device` (the device of the
  // operation's tensors). A no-op when checked mode is off. The collectives above call it with
  // their own descriptor; the primitives call it with theirs.
  void check_agreement(const std::string& descriptor, const at::Device& device);

  // Staging memory reused from call to call: a 1-D tensor of `numel` elements with `options`'
  // dtype and device, contents undefined. Why: a fresh CPU buffer of a few MiB comes back from
  // the OS as new pages, and faulting them in cost as much as the copy through it (measured: a
  // 16 MiB all-to-all over Gloo spent 28% of its time zeroing fresh pages). Each slot keeps the
  // largest buffer asked of it until release_scratch() or the communicator's end, so a model
  // that repeats its shapes touches no new pages. Slots let buffers live at once: kPack and
  // kStaging for the primitives, kEngine and kEnginePiece inside an engine's collectives. A
  // slot's tensor is valid until the next request of that slot; never return it to a caller.
  // CUDA tensors are allocated fresh: the caching allocator already reuses them, ordered by
  // stream, which a slot shared across streams would not be. Not thread-safe, like the
  // collectives themselves (one rank's calls run in order).
  enum ScratchSlot { kPack, kStaging, kEngine, kEnginePiece, kScratchSlots };
  at::Tensor scratch(ScratchSlot slot, int64_t numel, const at::TensorOptions& options);
  void release_scratch();

 protected:
  virtual void do_all_gather_v(const at::Tensor& send, const at::Tensor& recv,
                               const std::vector<int64_t>& counts, OwnPiece own) = 0;
  virtual void do_all_reduce_sum(const at::Tensor& buffer) = 0;
  // Default: in place, do_all_reduce_sum; else a reduce-scatter read straight from send and an
  // all-gather into recv (the bytes of a ring all-reduce, send never copied; each element summed
  // once, by its owner).
  virtual void do_all_reduce_sum_into(const at::Tensor& send, const at::Tensor& recv);
  virtual void do_reduce_scatter_v(const at::Tensor& send, const at::Tensor& recv,
                                   const std::vector<int64_t>& counts, const at::Tensor& own) = 0;
  virtual void do_all_to_all_v(const at::Tensor& send, const std::vector<int64_t>& send_counts,
                               const at::Tensor& recv, const std::vector<int64_t>& recv_counts,
                               OwnPiece own) = 0;
  virtual void do_barrier() = 0;

 private:
  std::array<at::Tensor, kScratchSlots> scratch_;  // kByte storage per slot
};

using CommPtr = std::shared_ptr<Communicator>;

// Checked mode: off by default; on when the environment variable GRAPHSHARD_CHECKED is "1",
// "true" or "on" at the first query, or after set_checked_mode(true). Process-wide. When off it
// costs one relaxed atomic load per collective.
void set_checked_mode(bool on);
bool checked_mode();

// Prefix offsets: offsets(counts)[q] = sum(counts[:q]); size W + 1.
std::vector<int64_t> offsets_of(const std::vector<int64_t>& counts);

}  // namespace graphshard
