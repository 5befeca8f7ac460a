#include "model/huge_pages.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

#include <atomic>
#include <cstdlib>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

// LibTorch 2.3 made Allocator::allocate non-const and added the pure virtual copy_data (compiled here
// against 1.13 and 2.15; not against 2.0-2.2).
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define R1_ALLOCATE_CONST
#define R1_ALLOCATOR_HAS_COPY_DATA 1
#else
#define R1_ALLOCATE_CONST const
#define R1_ALLOCATOR_HAS_COPY_DATA 0
#endif

namespace r1kit {
namespace {

std::atomic<bool> installed{false};

void free_block(void* p) { std::free(p); }

class HugePageAllocator final : public at::Allocator {
 public:
  explicit HugePageAllocator(at::Allocator* small) : small_(small) {}

  at::DataPtr allocate(size_t n) R1_ALLOCATE_CONST override {
    if (n < kHugePageBytes) return small_->allocate(n);
    void* p = nullptr;
    if (posix_memalign(&p, kHugePageBytes, n) != 0 || p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // Advice only: without THP (or with it set to "never") the block keeps 4 KB pages.
    madvise(p, (n + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes, MADV_HUGEPAGE);
#endif
    return {p, p, &free_block, at::Device(at::DeviceType::CPU)};
  }

  // Both kinds of block are posix_memalign'ed (LibTorch's CPU allocator on Linux), so free() releases
  // either; raw_allocate() callers get that.
  at::DeleterFnPtr raw_deleter() const override { return &free_block; }

#if R1_ALLOCATOR_HAS_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#endif

 private:
  at::Allocator* small_;
};

}  // namespace

void use_huge_pages_for_large_tensors() {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (installed.exchange(true)) return;
  static HugePageAllocator allocator(c10::GetCPUAllocator());
  c10::SetCPUAllocator(&allocator, /*priority=*/1);
#endif
}

bool huge_pages_for_large_tensors() { return installed.load(); }

}  // namespace r1kit
