// CPU kernels of the graph functions: sortedness, stable counting sort, binary search,
// mark-and-scan. Chunked parallel loops whose partial results are combined in chunk order, so
// the outputs do not depend on the number of threads.
#include "graph_kernels.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>
#include <memory>
#include <sstream>
#include <string>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "graphshard/comm.h"   // checked_mode
#include "graphshard/graph.h"  // debug_checks

namespace graphshard::cpu {

void precondition_failed(const char* kernel, const std::string& arg, const std::string& expected,
                         const std::string& actual) {
  throw c10::ValueError({__func__, __FILE__, static_cast<uint32_t>(__LINE__)},
                        "graphshard::" + std::string(kernel) + ": " + arg + ": expected " +
                            expected + ", got " + actual);
}

bool scan_preconditions() {
  return checked_mode() || debug_checks();
}

void check_values_in(const char* kernel, const char* arg, const at::Tensor& values, int64_t lo,
                     int64_t hi) {
  if (values.numel() == 0) return;
  const auto [mn, mx] = at::aminmax(values);
  int64_t a = 0, b = 0;
  if (values.device().is_cpu()) {
    a = mn.item<int64_t>(), b = mx.item<int64_t>();
  } else {
    const at::Tensor both = at::stack({mn, mx}).to(at::kCPU, at::kLong);  // one read-back
    a = both[0].item<int64_t>(), b = both[1].item<int64_t>();
  }
  if (a < lo || b >= hi) {
    precondition_failed(kernel, arg,
                        "values in [" + std::to_string(lo) + ", " + std::to_string(hi) + ")",
                        "values in [" + std::to_string(a) + ", " + std::to_string(b) + "]");
  }
}

namespace {

constexpr int64_t kGrain = 1 << 15;

// Number of chunks for a pass over n elements: at most one per thread, at least kGrain each.
int64_t num_chunks(int64_t n) {
  const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
  return std::max<int64_t>(1, std::min<int64_t>(threads, n / kGrain));
}

template <typename T>
int64_t first_unsorted_kernel_impl(const T* v, int64_t stride, int64_t n) {
  if (n < 2) return -1;
  const int64_t chunks = num_chunks(n);
  std::vector<int64_t> first(chunks, -1);
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      const int64_t lo = std::max<int64_t>(1, n * c / chunks), hi = n * (c + 1) / chunks;
      for (int64_t i = lo; i < hi; ++i) {
        if (v[(i - 1) * stride] > v[i * stride]) {
          first[c] = i;
          break;
        }
      }
    }
  });
  for (int64_t f : first) {
    if (f >= 0) return f;
  }
  return -1;
}

// key = value (blocks == 0) or the part of balanced(n, blocks) the value lies in.
struct KeyOf {
  int64_t blocks, big, small, cut;  // parts [0, rem) have `big` values, the rest `small`
  KeyOf(int64_t n, int64_t b) : blocks(b), big(0), small(0), cut(0) {
    if (b > 0) {
      small = n / b;
      big = small + 1;
      cut = (n % b) * big;
    }
  }
  int64_t operator()(int64_t v) const {
    if (blocks == 0) return v;
    return v < cut ? v / big : (cut / big) + (v - cut) / small;
  }
};

// key = value >> shift: buckets of 2^shift consecutive values (the first pass of a two-pass sort).
struct ShiftKey {
  int shift;
  int64_t operator()(int64_t v) const { return v >> shift; }
};

template <typename T, typename Key>
void counting_sort_kernel_impl(const T* v, int64_t stride, int64_t n, int64_t num_keys,
                               const Key& key, int64_t* perm, std::vector<int64_t>* key_counts,
                               const T* src = nullptr, int64_t src_stride = 0, T* out_src = nullptr,
                               T* out_dst = nullptr) {
  // Per-chunk histograms cost chunks * num_keys memory: bound it by a few times the input.
  const int64_t by_memory = std::max<int64_t>(1, (4 * n) / std::max<int64_t>(1, num_keys));
  const int64_t chunks = std::min(num_chunks(n), by_memory);
  std::vector<int64_t> hist(static_cast<size_t>(chunks * num_keys), 0);
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      int64_t* h = hist.data() + c * num_keys;
      for (int64_t i = n * c / chunks, hi = n * (c + 1) / chunks; i < hi; ++i) {
        ++h[key(static_cast<int64_t>(v[i * stride]))];
      }
    }
  });
  // hist[c][k] <- edges of key k in chunks before c; totals[k] <- edges of key k.
  std::vector<int64_t> base(static_cast<size_t>(num_keys) + 1, 0);
  at::parallel_for(0, num_keys, 4096, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      int64_t s = 0;
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t t = hist[c * num_keys + k];
        hist[c * num_keys + k] = s;
        s += t;
      }
      base[k + 1] = s;
    }
  });
  if (key_counts) key_counts->assign(base.begin() + 1, base.end());
  for (int64_t k = 0; k < num_keys; ++k) base[k + 1] += base[k];
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      int64_t* h = hist.data() + c * num_keys;
      for (int64_t i = n * c / chunks, hi = n * (c + 1) / chunks; i < hi; ++i) {
        const T value = v[i * stride];
        const int64_t k = key(static_cast<int64_t>(value));
        const int64_t pos = base[k] + h[k]++;
        perm[pos] = i;
        if (out_dst) {  // the sorted edges in the same pass: no second random gather
          out_dst[pos] = value;
          out_src[pos] = src[i * src_stride];
        }
      }
    }
  });
}

// Above kOnePassKeys keys one scatter pass stores to too many places at once (a cache and TLB
// miss per store, ~9x slower per edge at 1e7 edges than at 1e5): sort in two stable passes
// instead, by bucket of 2^kBucketBits consecutive keys, then within each bucket, whose edges and
// histogram fit in L2. Same result (a stable sort has one answer).
constexpr int kBucketBits = 10;
constexpr int64_t kOnePassKeys = int64_t{4} << kBucketBits;

template <typename T>
void two_pass_sort_edges_impl(const T* v, int64_t stride, const T* src, int64_t src_stride,
                              int64_t n, int64_t num_keys, int64_t* perm, T* out_src, T* out_dst) {
  int bits = 0;
  while ((int64_t{1} << bits) < num_keys) ++bits;
  const int shift = std::max(0, bits - kBucketBits);
  const int64_t buckets = ((num_keys - 1) >> shift) + 1, width = int64_t{1} << shift;
  std::vector<int64_t> counts;
  counting_sort_kernel_impl<T>(v, stride, n, buckets, ShiftKey{shift}, perm, &counts, src,
                               src_stride, out_src, out_dst);
  std::vector<int64_t> start(static_cast<size_t>(buckets) + 1, 0);
  for (int64_t b = 0; b < buckets; ++b) start[b + 1] = start[b] + counts[b];
  at::parallel_for(0, buckets, 1, [&](int64_t b0, int64_t b1) {
    std::vector<T> keys, srcs;
    std::vector<int64_t> idx, offset;
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t lo = start[b], m = start[b + 1] - lo, mask = width - 1;
      if (m < 2) continue;
      keys.assign(out_dst + lo, out_dst + lo + m);
      srcs.assign(out_src + lo, out_src + lo + m);
      idx.assign(perm + lo, perm + lo + m);
      offset.assign(static_cast<size_t>(width) + 1, 0);
      for (int64_t i = 0; i < m; ++i) ++offset[(keys[i] & mask) + 1];
      offset[0] = lo;
      for (int64_t k = 1; k <= width; ++k) offset[k] += offset[k - 1];
      for (int64_t i = 0; i < m; ++i) {  // stable: input order within equal keys
        const int64_t pos = offset[keys[i] & mask]++;
        out_dst[pos] = keys[i];
        out_src[pos] = srcs[i];
        perm[pos] = idx[i];
      }
    }
  });
}

template <typename T>
int64_t lower_bound_impl(const T* v, int64_t stride, int64_t n, int64_t value) {
  int64_t lo = 0, count = n;
  while (count > 0) {
    const int64_t step = count / 2, mid = lo + step;
    if (static_cast<int64_t>(v[mid * stride]) < value) {
      lo = mid + 1;
      count -= step + 1;
    } else {
      count = step;
    }
  }
  return lo;
}

// The used-ids mark of edges [b, e): false if an id lies outside [0, n). Shared (other threads
// mark too): many writers may store the same 1 into one byte, which an atomic store keeps
// defined, and reading first keeps a hot cache line shared once it is set. Alone: a plain store
// and no read (the read's branch mispredicts on every first visit, and the atomics reload the
// loop's state from memory).
template <bool Shared, typename T>
bool mark_used(const T* v, int64_t stride, int64_t b, int64_t e, int64_t n, uint8_t* mask) {
  bool ok = true;
  for (int64_t i = b; i < e; ++i) {
    const int64_t id = static_cast<int64_t>(v[i * stride]);
    if (static_cast<uint64_t>(id) >= static_cast<uint64_t>(n)) {
      ok = false;
    } else if (!Shared) {
      mask[id] = 1;
    } else if (!__atomic_load_n(&mask[id], __ATOMIC_RELAXED)) {
      __atomic_store_n(&mask[id], uint8_t{1}, __ATOMIC_RELAXED);
    }
  }
  return ok;
}

// Id: the new-id table's type (int32 where n allows: half the bytes for the relabelling pass's
// random reads). The table is not zeroed: the fill writes every entry.
template <typename T, typename Id>
UsedIds used_ids_kernel_impl(const T* v, int64_t stride, int64_t n_edges, int64_t n,
                             const at::TensorOptions& options, const at::Tensor& into) {
  UsedIds out;
  std::vector<uint8_t> mask(static_cast<size_t>(n), 0);
  std::atomic<bool> bad{false};
  // Alone with one thread (the common case: one per rank), or with one chunk of edges.
  const bool shared = at::get_num_threads() > 1 && n_edges > kGrain;
  at::parallel_for(0, n_edges, kGrain, [&](int64_t b, int64_t e) {
    const bool ok = shared ? mark_used<true>(v, stride, b, e, n, mask.data())
                           : mark_used<false>(v, stride, b, e, n, mask.data());
    if (!ok) bad.store(true, std::memory_order_relaxed);
  });
  if (bad.load()) {
    out.in_range = false;
    return out;
  }
  // Prefix scan of the mask in chunks: counts per chunk, offsets in chunk order, then fill.
  const int64_t chunks = num_chunks(n);
  std::vector<int64_t> offset(static_cast<size_t>(chunks) + 1, 0);
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      int64_t s = 0;
      for (int64_t i = n * c / chunks, hi = n * (c + 1) / chunks; i < hi; ++i) s += mask[i];
      offset[c + 1] = s;
    }
  });
  for (int64_t c = 0; c < chunks; ++c) offset[c + 1] += offset[c];
  // Branchless fill: every position writes its kept slot and its new id, and advances by its mask
  // byte (the branch on the mask mispredicts about as often as it is taken). Chunk c fills from
  // offset[c] + c, so its one slot past its end is its own; the chunks then close up.
  const at::Tensor kept_slack = at::empty({offset[chunks] + chunks}, options);
  T* kept = kept_slack.data_ptr<T>();
  const std::unique_ptr<Id[]> new_id(new Id[static_cast<size_t>(n)]);
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) {
      T* slot = kept + c;
      const uint8_t* m = mask.data();
      Id* nid = new_id.get();
      int64_t next = offset[c];
      for (int64_t i = n * c / chunks, hi = n * (c + 1) / chunks; i < hi; ++i) {
        slot[next] = static_cast<T>(i);
        nid[i] = static_cast<Id>(next);
        next += m[i];
      }
    }
  });
  for (int64_t c = 1; c < chunks; ++c) {
    std::memmove(kept + offset[c], kept + offset[c] + c,
                 static_cast<size_t>(offset[c + 1] - offset[c]) * sizeof(T));
  }
  out.kept = kept_slack.narrow(0, 0, offset[chunks]);
  out.relabelled = into.defined() ? into : at::empty({n_edges}, options);
  T* rel = out.relabelled.data_ptr<T>();
  at::parallel_for(0, n_edges, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      rel[i] = static_cast<T>(new_id[static_cast<int64_t>(v[i * stride])]);
  });
  return out;
}

// OR of x | (n - 1 - x) over row[b, e), in unsigned arithmetic (wrapping, never overflowing):
// the top bit is set iff some x lies outside [0, n), with no branch. Ids in [b, e) ∩ [lo, hi)
// are also copied to out[i - lo].
template <typename T>
uint64_t check_and_copy(const T* row, int64_t stride, int64_t b, int64_t e, int64_t lo, int64_t hi,
                        int64_t n, T* out) {
  const uint64_t top = static_cast<uint64_t>(n) - 1;
  uint64_t acc = 0;
  auto bits = [top](T x) {
    const uint64_t u = static_cast<uint64_t>(static_cast<int64_t>(x));
    return u | (top - u);
  };
  const int64_t c0 = std::clamp(lo, b, e), c1 = std::clamp(hi, b, e);
  for (int64_t i = b; i < c0; ++i) acc |= bits(row[i * stride]);
  for (int64_t i = c0; i < c1; ++i) {
    const T x = row[i * stride];
    out[i - lo] = x;
    acc |= bits(x);
  }
  for (int64_t i = c1; i < e; ++i) acc |= bits(row[i * stride]);
  return acc;
}

std::string describe(const at::Tensor& t) {
  std::ostringstream os;
  os << t.scalar_type() << t.sizes() << " on " << t.device();
  return os.str();
}

void check_row(const at::Tensor& row, const char* kernel) {
  if (!row.defined() || !row.device().is_cpu() || row.dim() != 1 ||
      (row.scalar_type() != at::kInt && row.scalar_type() != at::kLong)) {
    precondition_failed(kernel, "row", "a 1-D int32/int64 CPU tensor",
                        row.defined() ? describe(row) : "undefined");
  }
}

void check_count(const char* kernel, const char* arg, int64_t n) {
  if (n < 0) precondition_failed(kernel, arg, "a count >= 0", std::to_string(n));
}

}  // namespace

int64_t first_unsorted(const at::Tensor& row) {
  check_row(row, "cpu::first_unsorted");
  int64_t result = -1;
  AT_DISPATCH_INDEX_TYPES(row.scalar_type(), "first_unsorted", [&] {
    result =
        first_unsorted_kernel_impl<index_t>(row.data_ptr<index_t>(), row.stride(0), row.numel());
  });
  return result;
}

at::Tensor counting_sort_perm(const at::Tensor& row, int64_t num_keys, int64_t blocks,
                              std::vector<int64_t>* key_counts) {
  constexpr const char* kernel = "cpu::counting_sort_perm";
  check_row(row, kernel);
  check_count(kernel, "num_keys", num_keys);
  check_count(kernel, "blocks", blocks);
  // A value outside [0, num_keys) would index the histograms out of bounds (and with blocks >
  // num_keys its part size is 0: a division by zero).
  if (scan_preconditions()) check_values_in(kernel, "row", row, 0, num_keys);
  const int64_t n = row.numel();
  at::Tensor perm = at::empty({n}, row.options().dtype(at::kLong));
  if (key_counts) key_counts->assign(std::max<int64_t>(blocks, 0), 0);
  if (n == 0) return perm;
  const KeyOf key(num_keys, blocks);
  const int64_t keys = blocks > 0 ? blocks : num_keys;
  // A key range far beyond the input (a loose max_value) would make the histograms the cost:
  // a comparison sort is then cheaper, and stable sorting has one answer either way.
  if (blocks == 0 && keys > 8 * n + (int64_t{1} << 20)) {
    return std::get<1>(at::sort(row, /*stable=*/true, /*dim=*/0, /*descending=*/false));
  }
  AT_DISPATCH_INDEX_TYPES(row.scalar_type(), "counting_sort_perm", [&] {
    counting_sort_kernel_impl<index_t>(row.data_ptr<index_t>(), row.stride(0), n, keys, key,
                                       perm.data_ptr<int64_t>(), blocks > 0 ? key_counts : nullptr);
  });
  return perm;
}

std::pair<at::Tensor, at::Tensor> counting_sort_edges(const at::Tensor& edge_index,
                                                      int64_t num_keys) {
  constexpr const char* kernel = "cpu::counting_sort_edges";
  if (!edge_index.defined() || !edge_index.device().is_cpu() || edge_index.dim() != 2 ||
      edge_index.size(0) != 2 ||
      (edge_index.scalar_type() != at::kInt && edge_index.scalar_type() != at::kLong)) {
    precondition_failed(kernel, "edge_index", "a [2, E] int32/int64 CPU tensor",
                        edge_index.defined() ? describe(edge_index) : "undefined");
  }
  const at::Tensor src = edge_index.select(0, 0), dst = edge_index.select(0, 1);
  check_count(kernel, "num_keys", num_keys);
  // A destination outside [0, num_keys) would index the histograms out of bounds.
  if (scan_preconditions()) check_values_in(kernel, "edge_index (destinations)", dst, 0, num_keys);
  const int64_t n = dst.numel();
  if (num_keys > 8 * n + (int64_t{1} << 20)) {
    at::Tensor perm = counting_sort_perm(dst, num_keys);
    return {edge_index.index_select(1, perm), perm};
  }
  at::Tensor perm = at::empty({n}, dst.options().dtype(at::kLong));
  at::Tensor sorted = at::empty({2, n}, dst.options());
  if (n == 0) return {sorted, perm};
  AT_DISPATCH_INDEX_TYPES(dst.scalar_type(), "counting_sort_edges", [&] {
    if (num_keys > kOnePassKeys) {
      two_pass_sort_edges_impl<index_t>(dst.data_ptr<index_t>(), dst.stride(0),
                                        src.data_ptr<index_t>(), src.stride(0), n, num_keys,
                                        perm.data_ptr<int64_t>(), sorted.data_ptr<index_t>(),
                                        sorted.data_ptr<index_t>() + n);
      return;
    }
    counting_sort_kernel_impl<index_t>(dst.data_ptr<index_t>(), dst.stride(0), n, num_keys,
                                       KeyOf(num_keys, 0), perm.data_ptr<int64_t>(), nullptr,
                                       src.data_ptr<index_t>(), src.stride(0),
                                       sorted.data_ptr<index_t>(), sorted.data_ptr<index_t>() + n);
  });
  return {sorted, perm};
}

std::vector<int64_t> lower_bounds(const at::Tensor& row, const std::vector<int64_t>& bounds) {
  check_row(row, "cpu::lower_bounds");
  if (scan_preconditions() && !bounds.empty()) {
    // Binary search on an unsorted row stays in bounds but its offsets mean nothing (with no
    // bounds there is no search: one part of any edge order is all its edges).
    const int64_t i = first_unsorted(row);
    if (i >= 0) {
      precondition_failed("cpu::lower_bounds", "row", "a non-decreasing row",
                          "a decrease at index " + std::to_string(i) + " (" +
                              std::to_string(row[i - 1].item<int64_t>()) + " > " +
                              std::to_string(row[i].item<int64_t>()) + ")");
    }
  }
  std::vector<int64_t> out(bounds.size());
  AT_DISPATCH_INDEX_TYPES(row.scalar_type(), "lower_bounds", [&] {
    for (size_t j = 0; j < bounds.size(); ++j) {
      out[j] =
          lower_bound_impl<index_t>(row.data_ptr<index_t>(), row.stride(0), row.numel(), bounds[j]);
    }
  });
  return out;
}

UsedIds used_ids(const at::Tensor& row, int64_t n, const at::Tensor& relabelled_into) {
  check_row(row, "cpu::used_ids");
  check_count("cpu::used_ids", "n", n);  // the size of the mask
  if (relabelled_into.defined()) {
    TORCH_CHECK_VALUE(relabelled_into.dim() == 1 && relabelled_into.is_contiguous() &&
                          relabelled_into.scalar_type() == row.scalar_type() &&
                          relabelled_into.numel() == row.numel() &&
                          relabelled_into.device() == row.device(),
                      "graphshard::cpu::used_ids: relabelled_into: expected a contiguous ",
                      describe(row), ", got ", describe(relabelled_into));
  }
  UsedIds out;
  AT_DISPATCH_INDEX_TYPES(row.scalar_type(), "used_ids", [&] {
    out =
        n <= std::numeric_limits<int32_t>::max()
            ? used_ids_kernel_impl<index_t, int32_t>(row.data_ptr<index_t>(), row.stride(0),
                                                     row.numel(), n, row.options(), relabelled_into)
            : used_ids_kernel_impl<index_t, int64_t>(row.data_ptr<index_t>(), row.stride(0),
                                                     row.numel(), n, row.options(),
                                                     relabelled_into);
  });
  return out;
}

at::Tensor columns_if_in_range(const at::Tensor& ei, int64_t lo, int64_t hi, int64_t n_src,
                               int64_t n_dst) {
  constexpr const char* kernel = "cpu::columns_if_in_range";
  if (!ei.defined() || !ei.device().is_cpu() || ei.dim() != 2 || ei.size(0) != 2 ||
      (ei.scalar_type() != at::kInt && ei.scalar_type() != at::kLong)) {
    precondition_failed(kernel, "ei", "a [2, E] int32/int64 CPU tensor",
                        ei.defined() ? describe(ei) : "undefined");
  }
  check_count(kernel, "n_src", n_src);
  check_count(kernel, "n_dst", n_dst);
  if (lo < 0 || lo > hi || hi > ei.size(1)) {
    precondition_failed(kernel, "[lo, hi)",
                        "a range within [0, " + std::to_string(ei.size(1)) + "]",
                        "[" + std::to_string(lo) + ", " + std::to_string(hi) + ")");
  }
  at::Tensor out = at::empty({2, hi - lo}, ei.options());
  std::atomic<bool> bad{false};
  AT_DISPATCH_INDEX_TYPES(ei.scalar_type(), "columns_if_in_range", [&] {
    const index_t* v = ei.data_ptr<index_t>();
    index_t* o = out.data_ptr<index_t>();
    at::parallel_for(0, ei.size(1), kGrain, [&](int64_t b, int64_t e) {
      const uint64_t acc = check_and_copy<index_t>(v, ei.stride(1), b, e, lo, hi, n_src, o) |
                           check_and_copy<index_t>(v + ei.stride(0), ei.stride(1), b, e, lo, hi,
                                                   n_dst, o + (hi - lo));
      if (acc >> 63) bad.store(true, std::memory_order_relaxed);
    });
  });
  return bad.load() ? at::Tensor() : out;
}

}  // namespace graphshard::cpu
