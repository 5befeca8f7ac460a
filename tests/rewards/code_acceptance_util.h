// Helpers of the code reward acceptance tests (real sandbox, reference data sets).
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <regex>

#include "core/json.h"
#include "core/thread_pool.h"
#include "rewards/code_reward.h"
#include "sandbox/bwrap_runner.h"
#include "tests/test_util.h"

namespace r1kit::rewards::acceptance {


inline std::unique_ptr<CodeReward> real_reward(bool all_or_nothing = false) {
  sandbox::SandboxOptions so;
  if (!sandbox::probe_bwrap(so).empty()) return nullptr;
  CodeRewardOptions o;
  o.time_limit_s = 10;  // a few reference solutions are slow under a loaded CI machine
  o.all_or_nothing = all_or_nothing;
  o.sandbox = so;
  return std::make_unique<CodeReward>(o);
}

#define R1_REQUIRE_SANDBOX(reward)                                                        \
  auto reward = real_reward();                                                            \
  if (!reward) {                                                                          \
    if (access("/usr/bin/bwrap", X_OK) != 0) GTEST_SKIP() << "bubblewrap not installed";  \
    FAIL() << "bubblewrap unusable: " << ::r1kit::sandbox::probe_bwrap({});                        \
  }

inline std::vector<json> load(const std::string& rel) {
  std::vector<json> out;
  for_each_jsonl(test::shared_path(rel), [&](const json& rec, std::size_t) { out.push_back(rec); });
  return out;
}

// Scores all inputs. pass = true: every sample must score 1 (all its tests pass); pass = false:
// every sample must fail at least one test (score < 1). Sandbox errors are failures either way.
inline void expect_scores(const Reward& reward, const std::vector<RewardInput>& inputs, const std::vector<std::string>& ids,
                   bool pass, const char* what) {
  ThreadPool pool(4);  // sandboxes spend part of their time starting up: overlap them
  auto t0 = std::chrono::steady_clock::now();
  auto outs = reward.score_batch(inputs, &pool);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::size_t bad = 0, errors = 0;
  for (std::size_t i = 0; i < outs.size(); ++i) {
    errors += outs[i].error;
    if (outs[i].error || (pass ? outs[i].score != 1.0 : outs[i].score >= 1.0)) {
      ++bad;
      ADD_FAILURE() << what << " " << ids[i] << ": score " << outs[i].score << (pass ? " (expected 1)" : " (expected < 1)")
                    << (outs[i].error ? " ERROR " + outs[i].error_message : "") << "\n"
                    << outs[i].diagnostics.dump().substr(0, 1500);
    }
  }
  std::printf("[ measure ] %s: %zu samples in %.1f s (%.1f samples/s), %zu unexpected, %zu sandbox errors\n", what,
              outs.size(), s, outs.size() / s, bad, errors);
}

// MBPP: the reference code as the completion; the broken variant redefines the tested function
// after it to return None.
inline void run_mbpp(const std::string& rel, const char* name) {
  const std::string path = test::shared_path(rel);
  R1_REQUIRE_FILE(path);
  R1_REQUIRE_SANDBOX(reward);
  auto recs = load(rel);
  ASSERT_FALSE(recs.empty());
  std::vector<RewardInput> good, broken;
  std::vector<std::string> ids;
  const std::regex def_re(R"(def\s+([A-Za-z_]\w*)\s*\()");
  for (const auto& r : recs) {
    std::string code = r["code"].get<std::string>();
    code.erase(std::remove(code.begin(), code.end(), '\r'), code.end());
    RewardInput in;
    in.fields = r;
    in.completion = "```python\n" + code + "\n```";
    good.push_back(in);
    // The function the tests call: a def'd name that appears in the first assert.
    std::string first = r["test_list"][0].get<std::string>(), fn;
    for (std::sregex_iterator it(code.begin(), code.end(), def_re), end; it != end; ++it)
      if (std::regex_search(first, std::regex("\\b" + (*it)[1].str() + "\\s*\\("))) fn = (*it)[1].str();
    ASSERT_FALSE(fn.empty()) << name << " task " << r["task_id"] << ": tested function not found";
    in.completion = "```python\n" + code + "\n\ndef " + fn + "(*args, **kwargs):\n    return None\n```";
    broken.push_back(in);
    ids.push_back(std::string(name) + "/" + r["task_id"].dump());
  }
  expect_scores(*reward, good, ids, true, (std::string(name) + " reference").c_str());
  expect_scores(*reward, broken, ids, false, (std::string(name) + " broken").c_str());
}

}  // namespace r1kit::rewards::acceptance
