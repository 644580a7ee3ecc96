// The roles of primitive_roles.h: the payloads, the scratch of the bare collectives, the naive
// and floor formulations, and the dispatch of one call of (function, role).
#include "primitive_roles.h"

#include <algorithm>
#include <numeric>

#include <ATen/ATen.h>

#include "graphshard/halo.h"
#include "graphshard/primitives.h"

namespace graphshard::bench {
namespace {

constexpr int64_t kWidth = 256;  // the fixed (unsharded) extent of every payload

std::vector<int64_t> times(std::vector<int64_t> v, int64_t k) {
  for (auto& x : v) x *= k;
  return v;
}

at::Tensor naive_gather(Communicator& c, const Payload& p) {
  // Pad every piece to the largest, all-gather evenly, cut the padding, concatenate.
  const int64_t mx = *std::max_element(p.sizes.begin(), p.sizes.end());
  auto shape = p.x.sizes().vec();
  shape[p.dim] = mx;
  at::Tensor padded = at::zeros(shape, p.x.options());
  padded.narrow(p.dim, 0, p.x.size(p.dim)).copy_(p.x);
  const int w = c.size();
  at::Tensor all = at::empty({w * padded.numel()}, p.x.options());
  c.all_gather_v(padded.view({-1}), all, std::vector<int64_t>(w, padded.numel()));
  shape.insert(shape.begin(), w);
  const at::Tensor pieces = all.view(shape);
  std::vector<at::Tensor> list;
  for (int q = 0; q < w; ++q) list.push_back(pieces[q].narrow(p.dim, 0, p.sizes[q]));
  return at::cat(list, p.dim);
}

at::Tensor naive_a2a(Communicator& c, const Payload& p) {
  // Split to a list, flatten each piece, exchange, view each received piece, concatenate.
  const int64_t concat = 1 - p.dim;
  std::vector<at::Tensor> flat;
  for (const auto& piece : p.x.split_with_sizes(p.sizes, p.dim)) {
    flat.push_back(piece.contiguous().view({-1}));
  }
  const int r = c.rank();
  std::vector<int64_t> send_counts, recv_counts;
  for (const auto& f : flat) send_counts.push_back(f.numel());
  for (int64_t s : p.other_sizes) recv_counts.push_back(s * p.sizes[r]);
  at::Tensor recv = at::empty({std::accumulate(recv_counts.begin(), recv_counts.end(), int64_t{0})},
                              p.x.options());
  c.all_to_all_v(at::cat(flat), send_counts, recv, recv_counts);
  std::vector<at::Tensor> pieces;
  int64_t off = 0;
  for (size_t q = 0; q < p.other_sizes.size(); ++q) {
    auto shape = p.x.sizes().vec();
    shape[p.dim] = p.sizes[r];
    shape[concat] = p.other_sizes[q];
    pieces.push_back(recv.narrow(0, off, recv_counts[q]).view(shape));
    off += recv_counts[q];
  }
  return at::cat(pieces, concat);
}

// What anemoi-models' halo_exchange does: a piece per peer, concatenated to send, the received
// rows concatenated after the owned ones.
at::Tensor naive_halo(Communicator& c, const Payload& p, Bare& b) {
  std::vector<at::Tensor> pieces;
  for (const auto& idx : p.halo->send_indices) pieces.push_back(p.x.index_select(0, idx));
  at::Tensor recv = at::empty({p.halo->num_halo_nodes, kWidth}, p.x.options());
  c.all_to_all_v(at::cat(pieces).view({-1}), b.send_counts, recv.view({-1}), b.recv_counts);
  return at::cat({p.x, recv});
}

// The floor call (see primitive_roles.h) on one rank.
at::Tensor floor_call(const std::string& fn, const Payload& p, Bare& b, Communicator& c) {
  const int w = c.size(), r = c.rank();
  if (fn == "halo_exchange") {  // rows packed into scratch, received into a fresh output's tail
    const int64_t n = p.halo->num_local_nodes;
    at::Tensor out = at::empty({p.halo->total_nodes(), kWidth}, p.x.options());
    at::Tensor rows = b.pack.view({-1, kWidth});
    at::index_select_out(rows, p.x, 0, p.halo_send_ids);
    c.all_to_all_v(b.pack, b.send_counts,
                   out.narrow(0, n, p.halo->num_halo_nodes).view({-1}), b.recv_counts);
    out.narrow(0, 0, n).copy_(p.x);
    return out;
  }
  const auto off = offsets_of(p.sizes);
  if (b.pack.defined()) {  // [kWidth, n_q] pieces packed one after another, then sent from there
    for (int q = 0; q < w; ++q) {
      b.pack.narrow(0, off[q] * kWidth, p.sizes[q] * kWidth)
          .view({kWidth, p.sizes[q]})
          .copy_(p.x.narrow(1, off[q], p.sizes[q]));
    }
    at::Tensor out = at::empty_like(b.recv);
    if (fn == "reduce_shard_tensor") {
      c.reduce_scatter_v(b.pack, out, b.send_counts);
    } else {
      c.all_to_all_v(b.pack, b.send_counts, out, b.recv_counts);
    }
    return out;
  }
  if (fn == "reduce_tensor") {  // in place, then the fresh output's pages first touched
    c.all_reduce_sum(b.send);
    at::Tensor out = at::empty_like(b.send);
    out.slice(0, 0, out.numel(), 1024).fill_(0);  // 1024 float32 = one 4 KiB page
    return out;
  }
  if (p.dim == 0 && fn != "all_to_all_transpose") {  // straight into a fresh output
    at::Tensor out = at::empty_like(b.recv);
    if (fn == "reduce_shard_tensor") {
      c.reduce_scatter_v(b.send, out, b.send_counts);
    } else {
      c.all_gather_v(b.send, out, b.send_counts);
    }
    return out;
  }
  if (fn == "all_to_all_transpose") {  // [n_r, kWidth] pieces into a fresh [n_r, W kWidth]
    c.all_to_all_v(b.send, b.send_counts, b.recv, b.recv_counts);
    const int64_t n = p.sizes[r];
    at::Tensor out = at::empty({n, kWidth * w}, p.x.options());
    for (int q = 0; q < w; ++q) {
      out.narrow(1, q * kWidth, kWidth)
          .copy_(b.recv.narrow(0, q * n * kWidth, n * kWidth).view({n, kWidth}));
    }
    return out;
  }
  // gather and sync along dim 1: [kWidth, n_q] pieces into a fresh [kWidth, N]
  c.all_gather_v(b.send, b.recv, b.send_counts);
  at::Tensor out = at::empty({kWidth, off.back()}, p.x.options());
  for (int q = 0; q < w; ++q) {
    out.narrow(1, off[q], p.sizes[q])
        .copy_(b.recv.narrow(0, off[q] * kWidth, p.sizes[q] * kWidth).view({kWidth, p.sizes[q]}));
  }
  return out;
}

}  // namespace

Payload make_payload(const std::string& fn, int64_t bytes, int64_t dim, int w, int r) {
  Payload p;
  p.dim = dim;
  const int64_t n = std::max<int64_t>(bytes / 4 / kWidth - 1, w);  // uneven for W = 2, 4
  p.sizes = balanced_sizes(n, w);
  p.row = kWidth;
  auto shape = [&](int64_t along) {
    return dim == 0 ? std::vector<int64_t>{along, kWidth} : std::vector<int64_t>{kWidth, along};
  };
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1000 + r);
  if (fn == "halo_exchange") {
    const int64_t rows = std::max<int64_t>(bytes / 4 / kWidth, w);
    p.x = at::randn({rows, kWidth}, gen);
    auto info = std::make_shared<HaloInfo>();
    info->num_local_nodes = rows;
    const int64_t k = std::max(w - 1, 1);
    for (int q = 0; q < w; ++q) {
      const int64_t to_q = ((q - r - 1) % w + w) % w, from_q = ((r - q - 1) % w + w) % w;
      const bool peer = q != r;
      info->send_indices.push_back(peer ? at::arange(to_q, rows, k, at::kLong)
                                        : at::empty({0}, at::kLong));
      info->recv_counts.push_back(peer && from_q < rows ? (rows - from_q + k - 1) / k : 0);
      info->num_halo_nodes += info->recv_counts.back();
    }
    info->edge_index_local = at::empty({2, 0}, at::kLong);
    p.halo_send_ids = at::cat(info->send_indices);
    p.halo = std::move(info);
    return p;
  }
  if (fn == "gather_tensor" || fn == "sync_tensor") {
    p.x = at::randn(shape(p.sizes[r]), gen);
  } else if (fn == "all_to_all_transpose") {
    p.other_sizes.assign(w, kWidth);  // concat dim: kWidth per rank, so the input is `bytes`
    p.x = dim == 0 ? at::randn({n, kWidth}, gen) : at::randn({kWidth, n}, gen);
  } else {
    p.x = at::randn(shape(n), gen);
  }
  return p;
}

Bare make_bare(const std::string& fn, const Payload& p, int w, int r) {
  Bare b;
  if (fn == "halo_exchange") {  // the send rows pre-packed: the bare all-to-all-v moves them
    b.send = p.x.index_select(0, p.halo_send_ids).view({-1});
    b.send_counts = times(p.halo->send_counts(), kWidth);
    b.recv_counts = times(p.halo->recv_counts, kWidth);
    b.recv = at::zeros({p.halo->num_halo_nodes * kWidth}, p.x.options());
    b.pack = at::zeros_like(b.send);  // the floor's pack buffer (scratch, as the library's)
    return b;
  }
  b.send = p.x.contiguous().view({-1}).clone();
  b.recv = at::zeros({0}, p.x.options());
  const int64_t total = std::accumulate(p.sizes.begin(), p.sizes.end(), int64_t{0}) * p.row;
  if (fn == "gather_tensor" || fn == "sync_tensor") {
    b.send_counts = times(p.sizes, p.row);
    b.recv = at::empty({total}, p.x.options());
  } else if (fn == "reduce_shard_tensor") {
    b.send_counts = times(p.sizes, p.row);
    b.recv = at::empty({p.sizes[r] * p.row}, p.x.options());
  } else if (fn == "all_to_all_transpose") {
    b.send_counts = times(p.sizes, kWidth);
    b.recv_counts = times(p.other_sizes, p.sizes[r]);
    b.recv = at::empty({p.sizes[r] * kWidth * w}, p.x.options());
  }
  if (p.dim == 1 && (fn == "reduce_shard_tensor" || fn == "all_to_all_transpose")) {
    b.pack = at::zeros_like(b.send);  // only the floor rows that pack use it
  }
  b.recv.zero_();  // warm: every role finds its scratch pages already mapped
  return b;
}

at::Tensor run(const std::string& fn, const std::string& role, const CommPtr& comm,
               const Payload& p, Bare& b) {
  Communicator& c = *comm;
  const ShardSizes sizes = p.sizes;
  if (role == "floor") return floor_call(fn, p, b, c);
  if (role == "bare") {
    if (fn == "gather_tensor" || fn == "sync_tensor") {
      c.all_gather_v(b.send, b.recv, b.send_counts);
    } else if (fn == "reduce_tensor") {
      c.all_reduce_sum(b.send);
      return b.send;
    } else if (fn == "reduce_shard_tensor") {
      c.reduce_scatter_v(b.send, b.recv, b.send_counts);
    } else {
      c.all_to_all_v(b.send, b.send_counts, b.recv, b.recv_counts);
    }
    return b.recv;
  }
  if (role == "naive") {
    if (fn == "halo_exchange") return naive_halo(c, p, b);
    if (fn == "gather_tensor") return naive_gather(c, p);
    if (fn == "reduce_shard_tensor") {
      at::Tensor all = p.x.clone();
      c.all_reduce_sum(all.view({-1}));
      int64_t lo = 0;
      for (int q = 0; q < c.rank(); ++q) lo += p.sizes[q];
      return all.narrow(p.dim, lo, p.sizes[c.rank()]).contiguous();
    }
    return naive_a2a(c, p);
  }
  if (fn == "halo_exchange") return halo_exchange(p.x, *p.halo, comm);
  if (fn == "gather_tensor") return gather_tensor(p.x, p.dim, sizes, comm);
  if (fn == "sync_tensor") return sync_tensor(p.x, p.dim, sizes, comm, true);
  if (fn == "reduce_tensor") return reduce_tensor(p.x, comm);
  if (fn == "reduce_shard_tensor") return reduce_shard_tensor(p.x, p.dim, sizes, comm);
  return all_to_all_transpose(p.x, p.dim, sizes, 1 - p.dim, ShardSizes(p.other_sizes), comm);
}

bool check(const std::string& fn, const CommPtr& comm, const Payload& p, Bare& b) {
  const at::Tensor got = run(fn, "graphshard", comm, p, b);
  at::Tensor want;
  if (fn == "sync_tensor") {
    want = naive_gather(*comm, p);
  } else if (fn == "reduce_tensor") {
    want = p.x.clone();
    comm->all_reduce_sum(want.view({-1}));
  } else {
    want = run(fn, "naive", comm, p, b);
  }
  const bool exact = fn != "reduce_tensor" && fn != "reduce_shard_tensor";
  return got.sizes() == want.sizes() &&
         (exact ? at::equal(got, want) : at::allclose(got, want, 1e-5, 1e-5));
}

}  // namespace graphshard::bench
