// The code reward against a scripted fake runner: scoring, all-or-nothing early stop, error
// reporting (sandbox errors are errors, never wrong answers), the assert harness and its nonce.
#include <gtest/gtest.h>

#include "core/check.h"
#include "core/config.h"
#include "rewards/code_harness.h"
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

// The escaped form of `s` inside a Python bytes literal.
std::string escaped(const std::string& s) {
  const std::string lit = python_bytes_literal(s);
  return lit.substr(2, lit.size() - 3);
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
  const ExecRequest& q = honest->requests()[0];
  EXPECT_NE(q.source.find(escaped("import math\n")), std::string::npos);
  EXPECT_NE(q.source.find("def add(a, b):\\n    return a + b"), std::string::npos);
  // Neither the nonce nor the tests are in the program file: they reach the tester on stdin.
  EXPECT_EQ(q.source.find(q.stdin_data.substr(0, 10)), std::string::npos);
  EXPECT_EQ(q.source.find("add(0, 0) == 1"), std::string::npos);
  EXPECT_NE(q.stdin_data.find("add(0, 0) == 1"), std::string::npos);

  auto forger = std::make_shared<FakeRunner>([](const ExecRequest&) {
    ExecResult r = ok_with("");
    r.stderr_data = "R1OK1234 0 pass\n";
    return r;
  });
  CodeReward forged(CodeRewardOptions{}, forger);
  RewardOutput f = forged.score_one(in);
  EXPECT_EQ(f.score, 0.0);
  EXPECT_EQ(f.diagnostics["suspected_exploit"], "forged_pass_lines") << f.diagnostics.dump();
}

TEST(CodeReward, HumanEvalHarnessShape) {
  json fields = {{"prompt", "from typing import List\n\ndef f(x: List[int]) -> int:\n    \"\"\"doc\"\"\"\n"},
                 {"test", "def check(candidate):\n    assert candidate([1]) == 1\n"},
                 {"entry_point", "f"}};
  AssertHarness body = build_assert_harness("    return x[0]\n", fields, false);
  EXPECT_EQ(body.n_tests, 1u);
  EXPECT_NE(body.program.find(escaped("\"\"\"doc\"\"\"\n    return x[0]\n")), std::string::npos);
  EXPECT_EQ(body.program.find("candidate([1])"), std::string::npos);
  json spec = json::parse(body.tests_stdin);
  EXPECT_EQ(spec["mode"], "humaneval");
  EXPECT_EQ(spec["entry_point"], "f");
  EXPECT_FALSE(spec["stop"].get<bool>());
  AssertHarness full = build_assert_harness("from __future__ import annotations\ndef f(x):\n    return x[0]\n", fields, true);
  // hoisted to the top of the program's code
  EXPECT_NE(full.program.find("b'" + escaped("from __future__ import annotations\nfrom typing")), std::string::npos);
  EXPECT_TRUE(json::parse(full.tests_stdin)["stop"].get<bool>());
}

// MBPP's test_setup_code builds objects from the candidate's classes: it runs after the code.
TEST(CodeReward, MbppSetupCodeAfterTheCode) {
  json fields = {{"test_list", {"assert depth(root) == 1"}}, {"test_setup_code", "root = Node(1)"}};
  AssertHarness h = build_assert_harness("class Node:\n    def __init__(self, v): self.v = v\n", fields, false);
  const std::string code = python_bytes_literal("class Node:\n    def __init__(self, v): self.v = v\n");
  const std::string setup = python_bytes_literal("root = Node(1)");
  ASSERT_NE(h.program.find(code), std::string::npos);
  ASSERT_NE(h.program.find(setup), std::string::npos);
  EXPECT_LT(h.program.find(code), h.program.find(setup));
}

TEST(CodeReward, PythonBytesLiteral) {
  EXPECT_EQ(python_bytes_literal("a'b\\c\n\x01\xff"), "b'a\\'b\\\\c\\n\\x01\\xff'");
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
