// Large CPU tensors on transparent huge pages.
//
// A decode step streams every weight matrix from memory (a 0.5B model: 2 GB per step). With 4 KB
// pages that is a TLB miss and page walk per 4 KB. On 2 MB pages, in alternating runs on this VM: the
// native linear at batch 64 over weights cycled through DRAM 10-12% faster; whole 0.5B-shape decode
// steps +3% at batch 64 (1 thread) and +9% at batch 1 (2 threads). PyTorch 2.x offers the same for
// its own allocator as THP_MEM_ALLOC_ENABLE=1.
//
// use_huge_pages_for_large_tensors() replaces LibTorch's CPU allocator: blocks of at least 2 MB are
// 2 MB-aligned and advised MADV_HUGEPAGE (the kernel backs them with huge pages where its THP
// setting is "always" or "madvise"); smaller ones go to the allocator it replaced. Memory stays
// in the C allocator's hands as before (core/memory.h), so freed blocks are still reused. Tensors
// allocated before the call keep their pages, and the large blocks are not reported to LibTorch's
// memory profiler. Call once, early, from main; a no-op off Linux.
#pragma once
#include <cstddef>

namespace r1kit {

constexpr size_t kHugePageBytes = size_t{2} << 20;

void use_huge_pages_for_large_tensors();

// True once use_huge_pages_for_large_tensors() has replaced the CPU allocator in this process.
bool huge_pages_for_large_tensors();

}  // namespace r1kit
