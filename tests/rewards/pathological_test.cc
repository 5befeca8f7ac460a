// Bad and pathological completions: 1 MB texts, unbalanced and 10k tags, deep parentheses,
// invalid UTF-8, empty fields. Every built-in rule reward must return a finite score (or an error
// output) without crashing, hanging or blowing the stack.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/thread_pool.h"
#include "rewards/countdown_reward.h"
#include "rewards/registry.h"
#include "rewards/reward_set.h"

namespace r1kit::rewards {
namespace {

std::string repeat(const std::string& s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

std::vector<RewardInput> nasty_inputs() {
  std::mt19937 rng(7);
  std::string words;
  const char* vocab[] = {"the ", "answer ", "is ", "42 ", "中文", "<think>", "</think>", "<answer>", "</answer>", "\n", "é"};
  while (words.size() < (1u << 20)) words += vocab[rng() % 11];
  std::string bytes(1u << 20, '\0');
  for (auto& b : bytes) b = static_cast<char>(rng() % 256);
  std::vector<std::string> completions = {
      "",
      words,                                                   // 1 MB of tags and words
      "<think>" + std::string(1u << 20, 'a') + "</think>ok",   // 1 MB thought
      repeat("<think>", 10000),                                // 10k opening tags
      repeat("</think>", 10000) + "x",
      repeat("<think>\n</think>\n<answer>\n</answer>\n", 10000),
      repeat("<answer>", 10000) + "1+2" + repeat("</answer>", 10000),
      "<answer>" + std::string(1u << 20, '(') + "1</answer>",  // deep nesting
      "<answer>" + repeat("-", 1u << 20) + "1</answer>",      // deep unary chain
      "<answer>" + repeat("1+", 1u << 19) + "1</answer>",     // long flat expression
      "</think><think>",                                       // reversed
      "<think>unclosed",
      bytes,                                                   // invalid UTF-8
  };
  std::vector<RewardInput> inputs;
  for (const auto& c : completions) {
    RewardInput in;
    in.prompt = "p";
    in.completion = c;
    in.fields = {{"nums", {1, 2}}, {"target", 3}, {"answer", "3"}};
    inputs.push_back(in);
  }
  return inputs;
}

TEST(Pathological, EveryRuleRewardSurvives) {
  const auto inputs = nasty_inputs();
  RewardSet set;
  for (const auto& info : RewardRegistry::global().list()) {
    if (info.name == "plugin" || info.name == "code") continue;
    if (info.name == "reward_model" || info.name == "llm_judge") continue;  // need a model (rewards_model_test)
    json options = json::object();
    if (info.name == "cosine") options = {{"correctness", {{"name", "countdown"}}}};
    ConfigNode node(options, "pathological", info.name);
    set.add({info.name, info.name, 1.0, 0.0, RewardRegistry::global().create(info.name, node)});
  }
  ThreadPool pool(2);
  const auto scores = set.score(inputs, &pool);
  ASSERT_EQ(scores.size(), inputs.size());
  for (std::size_t i = 0; i < scores.size(); ++i) {
    for (std::size_t k = 0; k < set.entries().size(); ++k) {
      SCOPED_TRACE(set.entries()[k].label + " on input " + std::to_string(i));
      EXPECT_TRUE(std::isfinite(scores[i].outputs[k].score));
      EXPECT_FALSE(scores[i].outputs[k].error) << scores[i].outputs[k].error_message;
      EXPECT_NO_THROW(dump_line(set.to_json(scores[i])));  // diagnostics stay serialisable
    }
  }
  auto score_of = [&](const std::string& label, std::size_t i) {
    for (std::size_t k = 0; k < set.entries().size(); ++k)
      if (set.entries()[k].label == label) return scores[i].outputs[k].score;
    ADD_FAILURE() << "no reward " << label;
    return 0.0;
  };
  EXPECT_EQ(score_of("format", 3), 0.0);
  EXPECT_EQ(score_of("format", 4), 0.0);
  EXPECT_EQ(score_of("format", 2), 1.0);
  EXPECT_EQ(score_of("tag_count", 5), 0.0);
  EXPECT_EQ(score_of("language", 2), 1.0);
  EXPECT_EQ(score_of("countdown", 6), 0.1);   // "<answer><answer>...1+2</answer>" is not an equation
  EXPECT_EQ(score_of("countdown", 7), 0.1);   // too long (max_equation_chars)
  EXPECT_EQ(score_of("overlong", 1), -1.0);   // ~250k estimated tokens, past max_len
  EXPECT_EQ(score_of("overlong", 0), 0.0);
}

TEST(Pathological, DeepEquationsHitTheDepthLimitNotTheStack) {
  const std::string deep = std::string(200000, '(') + "1" + std::string(200000, ')');
  const CountdownCheck c = check_countdown_equation(deep, {1}, json(1), true);
  EXPECT_FALSE(c.parsed);
  EXPECT_NE(c.reason.find("deeply"), std::string::npos) << c.reason;
  const CountdownCheck u = check_countdown_equation(std::string(200000, '-') + "1", {1}, json(1), true);
  EXPECT_FALSE(u.parsed);
  // Within the limit, nesting is fine.
  const std::string ok = std::string(100, '(') + "1" + std::string(100, ')');
  EXPECT_TRUE(check_countdown_equation(ok, {1}, json(1), true).equals_target);
}

}  // namespace
}  // namespace r1kit::rewards
