// A scripted Runner for tests of code that uses the sandbox (the code reward) without bubblewrap:
// each request goes to a function that decides the result, and every request is recorded.
//
//   FakeRunner fake([](const ExecRequest& r) { ExecResult x; x.status = Status::ok; x.stdout_data = "3\n"; return x; });
#pragma once
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "sandbox/runner.h"

namespace r1kit::sandbox {

class FakeRunner : public Runner {
 public:
  using Script = std::function<ExecResult(const ExecRequest&)>;
  explicit FakeRunner(Script script) : script_(std::move(script)) {}

  ExecResult run(const ExecRequest& request) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests_.push_back(request);
    }
    return script_(request);
  }
  std::string name() const override { return "fake"; }

  std::vector<ExecRequest> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }

 private:
  Script script_;
  mutable std::mutex mu_;
  std::vector<ExecRequest> requests_;
};

}  // namespace r1kit::sandbox
