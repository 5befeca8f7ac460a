#include "core/fs.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "core/thread_pool.h"

using namespace r1kit;

TEST(Fs, AtomicWriteLeavesNoTempFiles) {
  const std::string dir = testing::TempDir() + "/atomic_dir";
  std::filesystem::remove_all(dir);
  write_file_atomic(dir + "/a.txt", "hello");
  write_file_atomic(dir + "/a.txt", "world");
  EXPECT_EQ(read_file(dir + "/a.txt"), "world");
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator(dir)) (void)e, ++n;
  EXPECT_EQ(n, 1);
}

TEST(ThreadPool, ParallelForRunsAllAndRethrows) {
  ThreadPool pool(2);
  std::vector<int> out(100, 0);
  parallel_for(pool, out.size(), [&](std::size_t i) { out[i] = static_cast<int>(i) * 2; });
  for (int i = 0; i < 100; ++i) EXPECT_EQ(out[i], 2 * i);
  EXPECT_THROW(parallel_for(pool, 3, [](std::size_t i) { if (i == 1) throw std::runtime_error("x"); }),
               std::runtime_error);
}
