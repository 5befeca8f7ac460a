// Acceptance of the code reward on the real sandbox: every HumanEval canonical solution and every
// MBPP reference solution passes its tests, and a deliberately broken variant of each fails.
// Runs through the reward's batch path on a thread pool (the sandbox runs in parallel).
#include "tests/rewards/code_acceptance_util.h"

namespace r1kit::rewards::acceptance {
namespace {

TEST(CodeAcceptance, HumanEvalCanonicalPassAndBrokenFail) {
  const std::string path = test::shared_path("data/humaneval/test.jsonl");
  R1_REQUIRE_FILE(path);
  R1_REQUIRE_SANDBOX(reward);
  auto recs = load("data/humaneval/test.jsonl");
  ASSERT_EQ(recs.size(), 164u);
  std::vector<RewardInput> good, broken;
  std::vector<std::string> ids;
  for (const auto& r : recs) {
    RewardInput in;
    in.fields = r;
    // The completion writes the whole function, as a chat model does.
    in.completion = "Here is my solution.\n```python\n" + r["prompt"].get<std::string>() +
                    r["canonical_solution"].get<std::string>() + "```\n";
    good.push_back(in);
    in.completion = "```python\n" + r["prompt"].get<std::string>() + "    return None\n```\n";
    broken.push_back(in);
    ids.push_back(r["task_id"].get<std::string>());
  }
  expect_scores(*reward, good, ids, true, "HumanEval canonical");
  expect_scores(*reward, broken, ids, false, "HumanEval broken");
}

TEST(CodeAcceptance, MbppSanitizedReferencePassAndBrokenFail) {
  run_mbpp("data/mbpp/mbpp_sanitized.jsonl", "MBPP-sanitized");
}

// stdin/stdout style on real CodeContests tests (1581_A "CQXYM Count Permutations", 9 tests): our
// own solutions in Python and C++ pass all; a wrong one (forgets to halve) fails.
TEST(CodeAcceptance, CodeContestsStdioOwnSolutions) {
  const std::string path = test::shared_path("data/codecontests/test.jsonl");
  R1_REQUIRE_FILE(path);
  R1_REQUIRE_SANDBOX(reward);
  json rec;
  for (const auto& r : load("data/codecontests/test.jsonl"))
    if (r["id"] == "codecontests-test-026") rec = r;
  ASSERT_FALSE(rec.is_null());
  ASSERT_EQ(rec["tests"].size(), 9u);
  const std::string py =
      "```python\nimport sys\nP = 10**9 + 7\nd = sys.stdin.read().split()\nout = []\nfor n in d[1:1 + int(d[0])]:\n"
      "    f = 1\n    for i in range(3, 2 * int(n) + 1):\n        f = f * i % P\n    out.append(str(f))\n"
      "print('\\n'.join(out))\n```";
  const std::string cpp =
      "```cpp\n#include <cstdio>\nint main(){ int t; std::scanf(\"%d\", &t); while (t--) { long long n, f = 1; "
      "std::scanf(\"%lld\", &n); for (long long i = 3; i <= 2 * n; ++i) f = f * i % 1000000007LL; "
      "std::printf(\"%lld\\n\", f); } }\n```";
  std::string wrong = py;
  wrong.replace(wrong.find("range(3,"), 8, "range(2,");
  CodeRewardOptions o;
  o.language = "auto";
  o.sandbox = sandbox::SandboxOptions{};
  CodeReward auto_lang(o);
  for (const auto& [completion, expect_pass] :
       std::vector<std::pair<std::string, bool>>{{py, true}, {cpp, true}, {wrong, false}}) {
    RewardInput in;
    in.completion = completion;
    in.fields = rec;
    RewardOutput out = auto_lang.score_one(in);
    EXPECT_FALSE(out.error) << out.error_message;
    if (expect_pass) {
      EXPECT_EQ(out.score, 1.0) << out.diagnostics.dump();
    } else {
      EXPECT_EQ(out.score, 0.0) << out.diagnostics.dump();
      EXPECT_EQ(out.diagnostics["first_failure"]["status"], "wrong_answer");
    }
  }
}

}  // namespace
}  // namespace r1kit::rewards::acceptance
