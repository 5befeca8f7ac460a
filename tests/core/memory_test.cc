// core/memory.h: after keep_freed_memory(), blocks of a few MB come from the heap and stay there
// when freed (so a training step reuses the previous step's pages instead of faulting in new ones).
#include "core/memory.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace r1kit {
namespace {

#if defined(__GLIBC__)
TEST(Memory, LargeBlocksComeFromTheHeapAndStayAfterFree) {
  keep_freed_memory();
  const size_t n = size_t{8} << 20;  // over glibc's default mmap threshold (128 KB to 32 MB, dynamic)
  const struct mallinfo2 before = mallinfo2();
  void* p = std::malloc(n);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, n);
  const struct mallinfo2 held = mallinfo2();
  EXPECT_EQ(held.hblkhd, before.hblkhd) << "the block got an mmap of its own";
  EXPECT_GE(held.arena, before.arena);
  std::free(p);
  const struct mallinfo2 after = mallinfo2();
  // Not trimmed: the heap keeps the freed block's pages (the default trims beyond 128 KB free).
  EXPECT_EQ(after.arena, held.arena) << "the heap was trimmed after free";
  EXPECT_GE(after.fordblks, n);
}
#else
TEST(Memory, LargeBlocksComeFromTheHeapAndStayAfterFree) { GTEST_SKIP() << "not glibc: keep_freed_memory is a no-op"; }
#endif

}  // namespace
}  // namespace r1kit
