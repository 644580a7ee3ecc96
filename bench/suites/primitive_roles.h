// The four roles a primitive is timed in by bench_primitives.cpp, on one rank: "graphshard" (the
// library's function), "bare" (the collective it wraps), "naive" (what a user would otherwise
// write) and "floor" (below); the payloads they share, and the check of the graphshard result
// before timing. Internal to graphshard_bench_primitives.
//
// A "floor" row times the bare collective together with what a primitive cannot avoid beyond
// it, in the order a primitive does them: its result is a new tensor (the collective writes a
// fresh output, whose pages the kernel faults in and zeroes), and when a piece is not a
// contiguous range of its tensor (a cut or concatenation along dim 1), one copy of the whole
// payload between the tensor and the wire layout, because transports move contiguous bytes
// only. Timed as one call, not as a sum of separate rows: on 2 cores a pack before a collective
// measured 1.5 ms more in sequence than alone (reduce-scatter, 16 MiB, W = 2), so a sum
// understated the floor. The summary prints floor / bare beside each ratio target; a primitive
// that moves its own piece without the wire can land below it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "graphshard/comm.h"
#include "graphshard/halo.h"

namespace graphshard::bench {

// One benchmark's payload on one rank. `bytes`: the whole gathered output (gather, sync), the
// whole input (reduce, reduce_shard), one rank's input (all_to_all), the halo rows one rank
// receives (halo_exchange).
struct Payload {
  at::Tensor x;
  std::vector<int64_t> sizes;        // shard sizes along dim (all_to_all: the split sizes)
  std::vector<int64_t> other_sizes;  // all_to_all: the concat sizes
  int64_t dim = 0, row = 1;          // row: elements per index along dim
  // halo_exchange: rank r owns n rows and receives n halo rows in all: rank q sends r its rows
  // whose id % (W - 1) == (r - q - 1) mod W (each row to one rank, every rank to every other).
  std::shared_ptr<HaloInfo> halo;
  at::Tensor halo_send_ids;  // every send list, concatenated in rank order
};

Payload make_payload(const std::string& fn, int64_t bytes, int64_t dim, int w, int r);

// Scratch buffers of the bare collectives, allocated once per benchmark (as NCCL-tests does).
struct Bare {
  at::Tensor send, recv, pack;  // pack: the floor row's send buffer for pieces cut along dim 1
  std::vector<int64_t> send_counts, recv_counts;
};

Bare make_bare(const std::string& fn, const Payload& p, int w, int r);

// One call of (function, role) on one rank.
at::Tensor run(const std::string& fn, const std::string& role, const CommPtr& comm,
               const Payload& p, Bare& b);

// The graphshard result against the naive one (or, without a naive row, a second formulation:
// the padded gather for sync, a fresh all-reduce for reduce). 1 when they agree.
bool check(const std::string& fn, const CommPtr& comm, const Payload& p, Bare& b);

}  // namespace graphshard::bench
