#include "cli/fast_start.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "cli/command.h"

namespace r1kit::cli {
namespace {

// OpenBLAS picks its kernels from the CPU model number; on CPUs it does not know (common on cloud VMs,
// where the model is reported as a generic "Intel Xeon Processor") it falls back to its Prescott (SSE3)
// kernels: measured here 3.6 vs 12.8 GFLOP/s (SkylakeX kernels) for a [2240x192]x[192x512] sgemm.
// LibTorch's CPU matmuls that do not go through r1kit's own kernels or oneDNN run on OpenBLAS, so the
// full executable is given the best OpenBLAS core that the CPU's features (as the OS enables them)
// allow. OPENBLAS_CORETYPE set by the user wins.
const char* openblas_core_for_this_cpu() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd"))
    return "SKYLAKEX";  // its float32 kernels are also what OpenBLAS uses on Cooper Lake and later
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "HASWELL";
#endif
  return nullptr;
}

}  // namespace

void set_blas_core_unless_set() {
  if (const char* set = std::getenv("OPENBLAS_CORETYPE"); set && *set) return;
  if (const char* core = openblas_core_for_this_cpu()) setenv("OPENBLAS_CORETYPE", core, 1);
}

void exec_full_binary_unless_registered(int argc, char** argv) {
#ifdef R1_CLI_FULL_BINARY
  // The subcommand is the first argument that is not an option (`--log-level X` takes a value).
  // Anything this scan misreads is simply handed to the full executable, which parses it properly.
  std::string sub;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--log-level") {
      ++i;
      continue;
    }
    if (a.empty() || a[0] == '-') continue;
    sub = a;
    break;
  }
  if (!sub.empty())
    for (const Command& c : commands())
      if (c.name == sub) return;
  std::string self(4096, '\0');
  ssize_t n = readlink("/proc/self/exe", self.data(), self.size() - 1);
  std::string full = R1_CLI_FULL_BINARY;
  if (n > 0) {
    self.resize(static_cast<size_t>(n));
    full = self.substr(0, self.rfind('/') + 1) + R1_CLI_FULL_BINARY;
  }
  set_blas_core_unless_set();
  execv(full.c_str(), argv);
  std::cerr << "r1kit: cannot start " << full << " (needed for '" << (sub.empty() ? "--help" : sub)
            << "'): " << std::strerror(errno) << "\n";
  std::exit(127);
#else
  (void)argc;
  (void)argv;
#endif
}

}  // namespace r1kit::cli
