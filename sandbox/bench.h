// `r1kit sandbox bench`: per-run overhead and runs/s of the sandbox against unsandboxed execution
// of the same programs (same interpreter / same binary, same stdin), measured in the same process.
#pragma once
#include <cstdint>
#include <string>

#include "core/json.h"
#include "sandbox/bwrap_runner.h"

namespace r1kit::sandbox {

struct BenchOptions {
  int runs = 40;          // sequential runs per program and mode (latency)
  int batch = 200;        // runs for the throughput part
  unsigned parallel = 0;  // workers for the throughput part (0 = CPU cores)
  std::string languages = "python,cpp";  // comma-separated
  // Touched memory held by the benchmarking process while it launches runs, as a trainer holding a
  // model would: fork-based spawning copies the page tables of all of it on every run.
  std::int64_t resident_mb = 0;
};

// Returns {"host": {...}, "<lang>": {"bare_ms": {mean, median, p90}, "sandbox_ms": {...},
// "overhead_ms_median", "overhead_ms_mean", "bare_cpu_ms", "sandbox_cpu_ms", "overhead_cpu_ms_median",
// "bare_runs_per_s", "sandbox_runs_per_s"}, ...}. Sandboxed CPU counts the program and bwrap's processes
// (cgroup) plus the launching thread; it needs cgroups to include the program.
// Throws r1kit::Error if a run does not give the expected output.
json run_bench(const SandboxOptions& sandbox_options, const BenchOptions& options);

}  // namespace r1kit::sandbox
