// A bounded worker pool of sandbox runs: at most `parallel` programs run at once, the rest queue.
// Used by the code reward (many tests x many samples per training step) and the benchmark.
#pragma once
#include <future>
#include <memory>
#include <vector>

#include "core/progress.h"
#include "core/thread_pool.h"
#include "sandbox/runner.h"

namespace r1kit::sandbox {

class SandboxPool {
 public:
  // parallel 0 = the number of CPU cores.
  SandboxPool(Runner& runner, unsigned parallel = 0);
  std::future<ExecResult> submit(ExecRequest request);
  // Runs all requests (in parallel, bounded) and returns the results in order; `progress`, when
  // given, advances as each run finishes.
  std::vector<ExecResult> run_all(const std::vector<ExecRequest>& requests, Progress* progress = nullptr);
  unsigned parallel() const { return pool_.size(); }
  Runner& runner() { return runner_; }

 private:
  Runner& runner_;
  ThreadPool pool_;
};

}  // namespace r1kit::sandbox
