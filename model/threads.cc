#include "model/threads.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "core/check.h"

namespace r1kit {

int set_default_threads() {
  int n = int(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("R1_THREADS"); env && *env) {
    char* end = nullptr;
    long v = std::strtol(env, &end, 10);
    R1_CHECK(end && *end == '\0' && v > 0, "R1_THREADS must be a positive integer, got '", env, "'");
    n = int(v);
  }
  if (n <= 0) n = 1;
  at::set_num_threads(n);
  return n;
}

}  // namespace r1kit
