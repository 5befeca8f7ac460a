// The code reward (DeepSeek-R1's code accuracy): extract the program from the completion, run it
// against the sample's tests in the sandbox, score the fraction passed (or all-or-nothing).
//
// Test styles, chosen from the dataset fields when test_style is "auto":
//  - assert (HumanEval: "prompt", "test", "entry_point"; MBPP: "test_list", optional
//    "test_imports" / "test_setup_code"): one program = prompt + code + tests. HumanEval's check()
//    is one test; each MBPP assert is one test. The program runs in its own process and the tests
//    in a tester process that only receives plain data from it and alone knows the run's nonce
//    (rewards/code_harness.h): an always-equal object, a stolen nonce, forged pass lines or an
//    early exit(0) pass nothing, and are reported in diagnostics "integrity" (component
//    "suspected_exploit" = 1).
//  - stdio ("tests": [{"input", "output"}], as in CodeContests / Codeforces): one sandboxed run per
//    test, stdout compared by tokens (optional float tolerance).
// A sandbox failure (our fault, not the program's) sets RewardOutput::error and is never scored as
// a wrong answer. Registered by the rewards registry as "code".
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "rewards/reward.h"
#include "sandbox/bwrap_runner.h"
#include "sandbox/pool.h"

namespace r1kit {
class ConfigNode;
}

namespace r1kit::rewards {

struct CodeRewardOptions {
  std::string language = "python";     // python | cpp | auto (from the last code block's fence tag)
  std::string test_style = "auto";     // auto | assert | stdio
  bool all_or_nothing = false;         // 1 only if every test passes; stops at the first failure
  double float_tolerance = 0.0;        // stdio: numeric tokens match within tol * max(1, |expected|)
  double time_limit_s = 4.0;           // per run (an assert program runs all its tests in one run)
  std::int64_t memory_mb = 512;        // per run
  std::string fence = "";              // code block tag to take ("" = the language's own tags)
  bool accept_untagged_fence = false;  // also take ``` blocks without a language tag
  std::size_t max_tests = 0;           // stdio: run at most this many tests per sample (0 = all)
  std::size_t max_stdout_bytes = 1 << 20;  // per run; more is output_limit (a failed test)
  unsigned parallel = 0;               // sandbox runs in flight (0 = CPU cores)
  double error_score = 0.0;            // score reported with error = true on sandbox failures
  sandbox::SandboxOptions sandbox;     // isolation settings (sandbox.* keys)
};

class CodeReward : public Reward {
 public:
  // Uses the real sandbox (make_runner: throws when bubblewrap is unusable and unsafe mode is off).
  explicit CodeReward(CodeRewardOptions options);
  // Uses the given runner (tests: sandbox::FakeRunner).
  CodeReward(CodeRewardOptions options, std::shared_ptr<sandbox::Runner> runner);

  // components: {"pass_rate": fraction passed, "code_found": 0|1}; diagnostics: language,
  // test_style, tests_total, tests_run, tests_passed, tests (per-test status), first_failure,
  // sandbox_status (first non-ok run status or "ok"), runner.
  RewardOutput score_one(const RewardInput& input) const override;
  const CodeRewardOptions& options() const { return options_; }

 private:
  RewardOutput score_assert(const std::string& lang, const std::string& code, const json& fields) const;
  RewardOutput score_stdio(const std::string& lang, const std::string& code, const json& tests) const;
  sandbox::ExecRequest request(const std::string& lang, std::string source, std::string stdin_data) const;

  CodeRewardOptions options_;
  std::shared_ptr<sandbox::Runner> runner_;
  std::unique_ptr<sandbox::SandboxPool> pool_;
};

// Keys: language, test_style, all_or_nothing, float_tolerance, time_limit_s, memory_mb, fence,
// accept_untagged_fence, max_tests, max_stdout_bytes, parallel, error_score, sandbox: {...}.
std::unique_ptr<Reward> make_code_reward(ConfigNode& options);

}  // namespace r1kit::rewards
