// MathAccuracyReward: scores, components, diagnostics, errors, config.
#include <gtest/gtest.h>

#include "core/config.h"
#include "rewards/math_reward.h"

namespace r1kit::rewards {
namespace {

RewardInput sample(const std::string& completion, json fields) {
  RewardInput in;
  in.completion = completion;
  in.fields = std::move(fields);
  return in;
}

TEST(MathReward, ScoresAndDiagnostics) {
  MathAccuracyReward r;
  RewardOutput out = r.score_one(sample("so the answer is \\boxed{\\frac{1}{2}}", {{"answer", "0.5"}}));
  EXPECT_EQ(out.score, 1.0);
  EXPECT_FALSE(out.error);
  EXPECT_EQ(out.components.at("answer"), 1.0);
  EXPECT_EQ(out.diagnostics.at("extracted"), "\\frac{1}{2}");
  EXPECT_EQ(out.diagnostics.at("pred_parsed"), "(1/2)");
  out = r.score_one(sample("\\boxed{3}", {{"answer", "0.5"}}));
  EXPECT_EQ(out.score, 0.0);
  EXPECT_EQ(out.components.at("extracted"), 1.0);
  out = r.score_one(sample("I give up", {{"answer", "0.5"}}));
  EXPECT_EQ(out.score, 0.0);
  EXPECT_EQ(out.components.at("extracted"), 0.0);
  EXPECT_FALSE(out.error);
}

TEST(MathReward, GoldFormatsAndErrors) {
  MathAccuracyOptions o;
  o.gold_format = GoldFormat::kGsm8k;
  MathAccuracyReward gsm(o);
  EXPECT_EQ(gsm.score_one(sample("She has 72 clips.", {{"answer", "48+24=72\n#### 72"}})).score, 1.0);
  RewardOutput bad = gsm.score_one(sample("72", {{"answer", "no hashes"}}));
  EXPECT_TRUE(bad.error);
  RewardOutput missing = MathAccuracyReward().score_one(sample("72", {{"final", "72"}}));
  EXPECT_TRUE(missing.error);
  EXPECT_NE(missing.error_message.find("answer"), std::string::npos);
}

TEST(MathReward, FromConfig) {
  json cfg = {{"gold_field", "final"}, {"gold_format", "int"}, {"correct_score", 2.0}, {"after_think", true},
              {"fallbacks", {{"last_number", false}}}};
  ConfigNode node(cfg, "test.yaml");
  auto reward = make_math_accuracy_reward(node);
  node.finish();
  EXPECT_EQ(reward->score_one(sample("\\boxed{25}", {{"final", "025"}})).score, 2.0);
  EXPECT_EQ(reward->score_one(sample("it is 25", {{"final", "025"}})).score, 0.0);  // no last-number fallback
  ConfigNode bad(json{{"gold_format", "yaml"}}, "test.yaml");
  EXPECT_THROW(make_math_accuracy_reward(bad), Error);
  ConfigNode unknown(json{{"fallbacks", {{"typo", true}}}}, "test.yaml");
  EXPECT_THROW(make_math_accuracy_reward(unknown), Error);
}

TEST(MathReward, Batch) {
  MathAccuracyReward r;
  std::vector<RewardInput> in;
  for (int i = 0; i < 50; ++i) in.push_back(sample("\\boxed{" + std::to_string(i) + "}", {{"answer", "7"}}));
  auto out = r.score_batch(in, nullptr);
  double total = 0;
  for (auto& o : out) total += o.score;
  EXPECT_EQ(total, 1.0);
}

}  // namespace
}  // namespace r1kit::rewards
