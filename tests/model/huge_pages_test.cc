// The huge-page CPU allocator (model/huge_pages.h): large tensors 2 MB-aligned and advised
// MADV_HUGEPAGE (checked in /proc/self/smaps where the kernel has THP), small ones as before, and
// both kinds freed through the allocator's raw interface.
#include <gtest/gtest.h>
#include <c10/core/CPUAllocator.h>
#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "core/fs.h"
#include "model/huge_pages.h"

using namespace r1kit;

namespace {

// The VmFlags line of the mapping holding `addr` in /proc/self/smaps ("" when not found).
std::string vm_flags_of(uintptr_t addr) {
  std::ifstream f("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(f, line)) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(':') > line.find(' ')) {
      inside = lo <= addr && addr < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return "";
}

}  // namespace

TEST(HugePages, LargeTensorsAreAlignedAndAdvisedSmallOnesUnchanged) {
  use_huge_pages_for_large_tensors();
  use_huge_pages_for_large_tensors();  // idempotent
  ASSERT_TRUE(huge_pages_for_large_tensors());

  auto big = torch::arange(3 << 20, torch::kFloat);  // 12 MB
  const auto addr = reinterpret_cast<uintptr_t>(big.data_ptr());
  EXPECT_EQ(addr % kHugePageBytes, 0u);
  EXPECT_EQ(big.sum().item<double>(), double(3 << 20) * ((3 << 20) - 1) / 2);

  auto small = torch::arange(1000, torch::kFloat);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small.data_ptr()) % 64, 0u);  // LibTorch's alignment
  EXPECT_EQ(small.sum().item<double>(), 999.0 * 1000 / 2);

  // The raw interface (used inside LibTorch) frees both kinds with one deleter.
  at::Allocator* a = c10::GetCPUAllocator();
  for (size_t bytes : {size_t{100}, size_t{4} << 20}) {
    void* p = a->raw_allocate(bytes);
    ASSERT_NE(p, nullptr);
    static_cast<char*>(p)[bytes - 1] = 1;
    a->raw_deallocate(p);
  }
  for (int i = 0; i < 50; ++i) EXPECT_EQ(torch::ones({1 << 20}).sum().item<double>(), double(1 << 20));

  const std::string thp_setting = "/sys/kernel/mm/transparent_hugepage/enabled";
  const std::string thp = std::filesystem::exists(thp_setting) ? read_file(thp_setting) : "absent";
  if (thp.find("[always]") == std::string::npos && thp.find("[madvise]") == std::string::npos)
    GTEST_SKIP() << "this kernel has no transparent huge pages (" << thp << "): the advice is not checked";
  const std::string flags = vm_flags_of(addr);
  std::printf("VmFlags of the 12 MB tensor's mapping: %s\n", flags.c_str());
  EXPECT_NE(flags.find(" hg"), std::string::npos) << "MADV_HUGEPAGE not in effect: " << flags;
}
