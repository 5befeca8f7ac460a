// The code reward against a scripted fake runner: scoring, all-or-nothing early stop, error
// reporting (sandbox errors are errors, never wrong answers), the assert harness and its nonce.
#include <gtest/gtest.h>

#include "core/check.h"
#include "core/config.h"
#include "rewards/code_reward.h"
#include "sandbox/fake_runner.h"

namespace r1kit::rewards {
namespace {
using sandbox::ExecRequest;
using sandbox::ExecResult;
using sandbox::FakeRunner;
using sandbox::Status;

ExecResult ok_with(const std::string& out) {
  ExecResult r;
  r.status = Status::ok;
  r.exit_code = 0;
  r.stdout_data = out;
  return r;
}

// Echoes stdin: a test passes when its expected output equals its input.
std::shared_ptr<FakeRunner> echo_runner() {
  return std::make_shared<FakeRunner>([](const ExecRequest& q) { return ok_with(q.stdin_data); });
}

RewardInput stdio_sample(const std::string& code_block) {
  RewardInput in;
  in.completion = "Let me think.\n" + code_block;
  in.fields["tests"] = json::array({{{"input", "1\n"}, {"output", "1"}},
                                    {{"input", "2\n"}, {"output", "3"}},
                                    {{"input", "4 5\n"}, {"output", "4   5\n"}}});
  return in;
}

TEST(CodeReward, StdioFractionPassed) {
  auto fake = echo_runner();
  CodeRewardOptions o;
  o.parallel = 2;
  CodeReward reward(o, fake);
  RewardOutput out = reward.score_one(stdio_sample("```python\nprint(input())\n```"));
  EXPECT_FALSE(out.error);
  EXPECT_NEAR(out.score, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(out.diagnostics["tests_passed"], 2);
  EXPECT_EQ(out.diagnostics["tests"][1]["status"], "wrong_answer");
  EXPECT_EQ(out.diagnostics["first_failure"]["index"], 1);
  EXPECT_EQ(out.diagnostics["test_style"], "stdio");
  ASSERT_EQ(fake->requests().size(), 3u);
  EXPECT_EQ(fake->requests()[0].source, "print(input())\n");
  EXPECT_EQ(fake->requests()[0].language, "python");
}

TEST(CodeReward, AllOrNothingStopsAtFirstFailure) {
  auto fake = echo_runner();
  CodeRewardOptions o;
  o.all_or_nothing = true;
  CodeReward reward(o, fake);
  RewardOutput out = reward.score_one(stdio_sample("```python\nprint(input())\n```"));
  EXPECT_EQ(out.score, 0.0);
  EXPECT_EQ(fake->requests().size(), 2u);  // the third test never ran
  EXPECT_EQ(out.diagnostics["tests_run"], 2);
}

TEST(CodeReward, SandboxErrorIsAnErrorNotAWrongAnswer) {
  auto fake = std::make_shared<FakeRunner>([](const ExecRequest&) {
    ExecResult r;
    r.status = Status::sandbox_error;
    r.message = "bwrap exploded";
    return r;
  });
  CodeRewardOptions o;
  o.error_score = -7;
  CodeReward reward(o, fake);
  RewardOutput out = reward.score_one(stdio_sample("```python\nx\n```"));
  EXPECT_TRUE(out.error);
  EXPECT_NE(out.error_message.find("bwrap exploded"), std::string::npos);
  EXPECT_EQ(out.score, -7);
  EXPECT_EQ(out.diagnostics["sandbox_status"], "sandbox_error");
}

TEST(CodeReward, ProgramFailuresAreScoredNotErrors) {
  for (Status st : {Status::timeout, Status::memory, Status::runtime_error, Status::output_limit, Status::denied,
                    Status::compile_error}) {
    auto fake = std::make_shared<FakeRunner>([st](const ExecRequest&) {
      ExecResult r;
      r.status = st;
      return r;
    });
    CodeReward reward(CodeRewardOptions{}, fake);
    RewardOutput out = reward.score_one(stdio_sample("```python\nx\n```"));
    EXPECT_FALSE(out.error) << sandbox::to_string(st);
    EXPECT_EQ(out.score, 0.0);
    EXPECT_EQ(out.diagnostics["tests"][0]["status"], sandbox::to_string(st));
    EXPECT_EQ(out.diagnostics["sandbox_status"], sandbox::to_string(st));
  }
}

TEST(CodeReward, NoCodeBlockScoresZeroWithoutRunning) {
  auto fake = echo_runner();
  CodeReward reward(CodeRewardOptions{}, fake);
  RewardOutput out = reward.score_one(stdio_sample("I would print the input."));
  EXPECT_FALSE(out.error);
  EXPECT_EQ(out.score, 0.0);
  EXPECT_EQ(out.components["code_found"], 0.0);
  EXPECT_TRUE(fake->requests().empty());
  // A cpp block does not count for a python reward.
  RewardOutput cpp = reward.score_one(stdio_sample("```cpp\nint main(){}\n```"));
  EXPECT_EQ(cpp.components["code_found"], 0.0);
}

TEST(CodeReward, AutoLanguageFollowsTheFence) {
  auto fake = echo_runner();
  CodeRewardOptions o;
  o.language = "auto";
  CodeReward reward(o, fake);
  reward.score_one(stdio_sample("```python\nnope\n```\n```cpp\nint main(){}\n```"));
  ASSERT_FALSE(fake->requests().empty());
  EXPECT_EQ(fake->requests()[0].language, "cpp");
  EXPECT_EQ(fake->requests()[0].source, "int main(){}\n");
}

TEST(CodeReward, MissingTestsIsADatasetError) {
  CodeReward reward(CodeRewardOptions{}, echo_runner());
  RewardInput in;
  in.completion = "```python\nx\n```";
  RewardOutput out = reward.score_one(in);
  EXPECT_TRUE(out.error);
  in.fields["tests"] = json::array({{{"input", "1"}}});
  EXPECT_TRUE(reward.score_one(in).error);  // malformed test: no "output"
}

// The assert harness: the nonce comes on stdin; only lines with it count.
TEST(CodeReward, AssertStyleUsesTheNonceFromStdin) {
  auto honest = std::make_shared<FakeRunner>([](const ExecRequest& q) {
    std::string nonce = q.stdin_data.substr(0, q.stdin_data.find('\n'));
    return ok_with("noise\n" + nonce + " 0 pass\n" + nonce + " 2 pass\n");
  });
  CodeReward reward(CodeRewardOptions{}, honest);
  RewardInput in;
  in.completion = "```python\ndef add(a, b):\n    return a + b\n```";
  in.fields = {{"test_list", {"assert add(1, 2) == 3", "assert add(0, 0) == 1", "assert add(2, 2) == 4"}},
               {"test_imports", {"import math"}}};
  RewardOutput out = reward.score_one(in);
  EXPECT_FALSE(out.error);
  EXPECT_NEAR(out.score, 2.0 / 3.0, 1e-12);
  EXPECT_EQ(out.diagnostics["test_style"], "assert");
  EXPECT_EQ(out.diagnostics["tests"][1]["status"], "fail");
  const std::string src = honest->requests()[0].source;
  EXPECT_NE(src.find("import math"), std::string::npos);
  EXPECT_NE(src.find("def add(a, b)"), std::string::npos);
  EXPECT_NE(src.find("    assert add(0, 0) == 1"), std::string::npos);
  EXPECT_EQ(src.find(honest->requests()[0].stdin_data.substr(0, 10)), std::string::npos);  // nonce not in the file

  auto forger = std::make_shared<FakeRunner>([](const ExecRequest&) { return ok_with("R1OK1234 0 pass\n"); });
  CodeReward forged(CodeRewardOptions{}, forger);
  EXPECT_EQ(forged.score_one(in).score, 0.0);
}

TEST(CodeReward, HumanEvalProgramShape) {
  json fields = {{"prompt", "from typing import List\n\ndef f(x: List[int]) -> int:\n    \"\"\"doc\"\"\"\n"},
                 {"test", "def check(candidate):\n    assert candidate([1]) == 1\n"},
                 {"entry_point", "f"}};
  std::size_t n = 0;
  std::string body = build_assert_program("    return x[0]\n", fields, false, n);
  EXPECT_EQ(n, 1u);
  EXPECT_NE(body.find("\"\"\"doc\"\"\"\n    return x[0]\n"), std::string::npos);
  EXPECT_NE(body.find("    check(f)"), std::string::npos);
  std::string full = build_assert_program("from __future__ import annotations\ndef f(x):\n    return x[0]\n", fields, true, n);
  EXPECT_EQ(full.rfind("from __future__ import annotations\n", 0), 0u);  // hoisted to the top
  EXPECT_NE(full.find("        break"), std::string::npos);
}

// MBPP's test_setup_code builds objects from the candidate's classes: it must come after the code.
TEST(CodeReward, MbppSetupCodeAfterTheCode) {
  json fields = {{"test_list", {"assert depth(root) == 1"}}, {"test_setup_code", "root = Node(1)"}};
  std::size_t n = 0;
  std::string p = build_assert_program("class Node:\n    def __init__(self, v): self.v = v\n", fields, false, n);
  ASSERT_NE(p.find("class Node"), std::string::npos);
  ASSERT_NE(p.find("root = Node(1)"), std::string::npos);
  EXPECT_LT(p.find("class Node"), p.find("root = Node(1)"));
}

TEST(CodeReward, ConfigValidation) {
  ConfigNode bad(json{{"test_style", "fuzzy"}}, "cfg.yaml");
  EXPECT_THROW(make_code_reward(bad), Error);
  ConfigNode lang(json{{"language", "cobol"}}, "cfg.yaml");
  EXPECT_THROW(make_code_reward(lang), Error);
  ConfigNode refuse(json{{"sandbox", {{"bwrap_path", "/nonexistent/bwrap"}}}}, "cfg.yaml");
  try {
    make_code_reward(refuse);
    FAIL() << "expected a refusal";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Refusing"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace r1kit::rewards
