// Counting CPU allocator wrapper and global operator new/delete replacement (see the header).
#include "memory_tracker.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

namespace graphshard::bench {
namespace {

// Constant-initialised, so counting works for allocations made before any dynamic initialiser.
std::atomic<int64_t> g_current{0};
std::atomic<int64_t> g_peak{0};

void add(int64_t n) {
  const int64_t now = g_current.fetch_add(n, std::memory_order_relaxed) + n;
  int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

void sub(int64_t n) {
  g_current.fetch_sub(n, std::memory_order_relaxed);
}

// The wrapped allocation: the inner DataPtr (which frees the memory when destroyed) and its size.
// Allocated with malloc so that the bookkeeping itself is not counted.
struct Context {
  c10::DataPtr inner;
  size_t size;
};

void delete_context(void* p) {
  auto* ctx = static_cast<Context*>(p);
  sub(static_cast<int64_t>(ctx->size));
  ctx->~Context();
  std::free(ctx);
}

struct CountingAllocator final : c10::Allocator {
  explicit CountingAllocator(c10::Allocator* inner) : inner_(inner) {}

  c10::DataPtr allocate(size_t n) override {
    c10::DataPtr data = inner_->allocate(n);
    void* ptr = data.get();
    const c10::Device device = data.device();
    void* mem = std::malloc(sizeof(Context));
    if (!mem) throw std::bad_alloc();
    auto* ctx = new (mem) Context{std::move(data), n};
    add(static_cast<int64_t>(n));
    return c10::DataPtr(ptr, ctx, &delete_context, device);
  }

  // The context is not the data pointer, so the raw interface is unsupported (nullptr).
  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }

  void copy_data(void* dest, const void* src, std::size_t count) const override {
    inner_->copy_data(dest, src, count);
  }

 private:
  c10::Allocator* inner_;
};

void* counted_malloc(size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p) add(static_cast<int64_t>(malloc_usable_size(p)));
  return p;
}

void* counted_aligned(size_t n, size_t align) {
  void* p = nullptr;
  if (posix_memalign(&p, std::max(align, sizeof(void*)), n == 0 ? 1 : n) != 0) return nullptr;
  add(static_cast<int64_t>(malloc_usable_size(p)));
  return p;
}

void counted_free(void* p) noexcept {
  if (!p) return;
  sub(static_cast<int64_t>(malloc_usable_size(p)));
  std::free(p);
}

}  // namespace

void install_memory_tracker() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Leaked on purpose: tensors may outlive every static destructor.
    static auto* wrapper = new CountingAllocator(c10::GetCPUAllocator());
    c10::SetCPUAllocator(wrapper, /*priority=*/100);
  });
}

int64_t current_bytes() {
  return g_current.load(std::memory_order_relaxed);
}

int64_t peak_bytes() {
  return g_peak.load(std::memory_order_relaxed);
}

void reset_peak() {
  g_peak.store(g_current.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

}  // namespace graphshard::bench

// Global replacements: every operator new of the process (ours, ATen's, the standard
// library's) goes through the counters.
using graphshard::bench::counted_aligned;
using graphshard::bench::counted_free;
using graphshard::bench::counted_malloc;

namespace {
void* throwing_new(size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
void* throwing_new(size_t n, std::align_val_t a) {
  if (void* p = counted_aligned(n, static_cast<size_t>(a))) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(size_t n) {
  return throwing_new(n);
}
void* operator new[](size_t n) {
  return throwing_new(n);
}
void* operator new(size_t n, std::align_val_t a) {
  return throwing_new(n, a);
}
void* operator new[](size_t n, std::align_val_t a) {
  return throwing_new(n, a);
}
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  return counted_malloc(n);
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return counted_malloc(n);
}
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_aligned(n, static_cast<size_t>(a));
}
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_aligned(n, static_cast<size_t>(a));
}
void operator delete(void* p) noexcept {
  counted_free(p);
}
void operator delete[](void* p) noexcept {
  counted_free(p);
}
void operator delete(void* p, size_t) noexcept {
  counted_free(p);
}
void operator delete[](void* p, size_t) noexcept {
  counted_free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  counted_free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  counted_free(p);
}
void operator delete(void* p, size_t, std::align_val_t) noexcept {
  counted_free(p);
}
void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  counted_free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  counted_free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  counted_free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  counted_free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  counted_free(p);
}
