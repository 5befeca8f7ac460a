#include "core/memory.h"

#include <cstdlib>  // any C library header defines __GLIBC__ (features.h); the test below needs one first

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace r1kit {

void keep_freed_memory() {
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);  // the largest value glibc accepts on 64-bit
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);  // grow the heap in 64 MB steps: fewer brk calls
#endif
}

}  // namespace r1kit
