#include "model/cpu_kernels.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "core/check.h"

namespace r1kit::cpu {

namespace generic {
const KernelTable* table();
}
#if defined(__x86_64__)
namespace avx2 {
const KernelTable* table();
}
namespace avx512 {
const KernelTable* table();
}
#endif

const KernelTable* kernels_for(const char* isa) {
  const std::string name = isa;
  if (name == "generic") return generic::table();
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (name == "avx2" && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return avx2::table();
  if (name == "avx512" && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
    return avx512::table();
#endif
  return nullptr;
}

const KernelTable& kernels() {
  static const KernelTable* chosen = [] {
    if (const char* forced = std::getenv("R1_CPU_KERNELS"); forced && *forced) {
      const KernelTable* t = kernels_for(forced);
      R1_CHECK(t != nullptr, "R1_CPU_KERNELS=", forced, ": not one of avx512, avx2, generic that this CPU supports");
      return t;
    }
    for (const char* isa : {"avx512", "avx2"})
      if (const KernelTable* t = kernels_for(isa)) return t;
    return kernels_for("generic");
  }();
  return *chosen;
}

}  // namespace r1kit::cpu
