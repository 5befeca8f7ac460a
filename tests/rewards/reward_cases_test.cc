// Table-driven reward cases: tests/data/rewards/<reward>.jsonl, one case per line with the
// completion, prompt, dataset fields, reward options and the expected score (hand-written and,
// for rewards that follow a published implementation, checked against a Python re-statement of it
// by tests/data/rewards/make_cases.py).
#include <gtest/gtest.h>

#include <cmath>

#include "core/json.h"
#include "core/thread_pool.h"
#include "rewards/registry.h"
#include "rewards/reward_set.h"
#include "tests/test_util.h"

namespace r1kit::rewards {
namespace {

struct Case {
  std::string where;  // file:line (desc)
  std::string reward;
  json options;
  RewardInput input;
  double expected = 0;
  bool error = false;
};

std::vector<Case> load_cases(const std::string& name) {
  const std::string path = test::test_data_path("rewards/" + name + ".jsonl");
  std::vector<Case> cases;
  for_each_jsonl(path, [&](const json& rec, int line) {
    Case c;
    c.where = str_cat(path, ":", line, " (", rec.at("desc").get<std::string>(), ")");
    c.reward = rec.at("reward").get<std::string>();
    c.options = rec.value("options", json::object());
    c.input.prompt = rec.value("prompt", "");
    c.input.completion = rec.at("completion").get<std::string>();
    c.input.fields = rec.value("fields", json::object());
    c.expected = rec.at("expected").get<double>();
    c.error = rec.value("error", false);
    cases.push_back(std::move(c));
  });
  return cases;
}

RewardSet single(const Case& c) {
  ConfigNode options(c.options, c.where, "options");
  RewardSet set;
  set.add({c.reward, c.reward, 1.0, 0.0, RewardRegistry::global().create(c.reward, options)});
  return set;
}

class RewardCases : public ::testing::TestWithParam<std::string> {};

TEST_P(RewardCases, EachCaseScoresAsExpected) {
  const std::vector<Case> cases = load_cases(GetParam());
  ASSERT_GE(cases.size(), 10u) << "too few cases for " << GetParam();
  int checked = 0;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.where);
    const std::vector<SampleScore> s = single(c).score({c.input}, nullptr);
    ASSERT_EQ(s.size(), 1u);
    const RewardOutput& out = s[0].outputs.at(0);
    EXPECT_EQ(out.error, c.error) << out.error_message;
    if (c.error) {
      EXPECT_FALSE(out.error_message.empty());
    }
    EXPECT_NEAR(out.score, c.expected, 1e-9) << "diagnostics: " << out.diagnostics.dump();
    EXPECT_DOUBLE_EQ(s[0].total, out.score);
    ++checked;
  }
  EXPECT_EQ(checked, static_cast<int>(cases.size()));
}

// Scoring all cases of one options group as one parallel batch gives the per-sample results.
TEST_P(RewardCases, ParallelBatchEqualsSerial) {
  const std::vector<Case> cases = load_cases(GetParam());
  std::map<std::string, std::vector<const Case*>> groups;
  for (const Case& c : cases) groups[c.options.dump()].push_back(&c);
  ThreadPool pool(4);
  for (const auto& [options, group] : groups) {
    std::vector<RewardInput> inputs;
    for (const Case* c : group) inputs.push_back(c->input);
    RewardSet set = single(*group[0]);
    const auto parallel = set.score(inputs, &pool);
    const auto serial = set.score(inputs, nullptr);
    ASSERT_EQ(parallel.size(), group.size());
    for (std::size_t i = 0; i < group.size(); ++i) {
      SCOPED_TRACE(group[i]->where);
      EXPECT_NEAR(parallel[i].outputs[0].score, group[i]->expected, 1e-9);
      EXPECT_EQ(parallel[i].outputs[0].score, serial[i].outputs[0].score);
      EXPECT_EQ(parallel[i].outputs[0].error, group[i]->error);
      EXPECT_EQ(parallel[i].outputs[0].components, serial[i].outputs[0].components);
      EXPECT_EQ(parallel[i].outputs[0].diagnostics, serial[i].outputs[0].diagnostics);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Rewards, RewardCases,
                         ::testing::Values("format", "tag_count", "language", "cosine", "overlong", "repetition",
                                           "countdown"));

}  // namespace
}  // namespace r1kit::rewards
