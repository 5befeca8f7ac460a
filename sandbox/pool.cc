#include "sandbox/pool.h"

namespace r1kit::sandbox {

SandboxPool::SandboxPool(Runner& runner, unsigned parallel) : runner_(runner), pool_(parallel) {}

std::future<ExecResult> SandboxPool::submit(ExecRequest request) {
  return pool_.submit([this, r = std::move(request)] { return runner_.run(r); });
}

std::vector<ExecResult> SandboxPool::run_all(const std::vector<ExecRequest>& requests, Progress* progress) {
  std::vector<std::future<ExecResult>> futs;
  futs.reserve(requests.size());
  for (const auto& r : requests)
    futs.push_back(pool_.submit([this, &r, progress] {
      ExecResult result = runner_.run(r);
      if (progress) progress->advance();
      return result;
    }));
  std::vector<ExecResult> out;
  out.reserve(requests.size());
  for (auto& f : futs) out.push_back(f.get());
  return out;
}

}  // namespace r1kit::sandbox
