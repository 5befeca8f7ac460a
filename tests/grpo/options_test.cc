// GrpoOptions from a config node: defaults, every key read, unknown keys and bad values rejected
// with the key named.
#include "grpo/grpo_options.h"

#include <gtest/gtest.h>

#include "core/check.h"

namespace r1kit::grpo {
namespace {

GrpoOptions read(const std::string& text) {
  ConfigNode node(parse_json(text, "grpo.json"), "grpo.json", "stages.grpo");
  return read_grpo_options(node);
}

std::string error_of(const std::string& text) {
  try {
    read(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(GrpoOptions, DefaultsAndOverrides) {
  GrpoOptions o = read(R"({"rewards": [{"name": "format", "weight": 0.5}]})");
  EXPECT_EQ(o.group_size, 8);
  EXPECT_EQ(o.beta, 0.0);
  EXPECT_EQ(o.scale_rewards, "group");
  EXPECT_EQ(o.advantage_eps, 1e-4);
  ASSERT_EQ(o.rewards.entries().size(), 1u);
  EXPECT_EQ(o.rewards.entries()[0].weight, 0.5);
  o = read(R"({"rewards": ["format"], "epsilon_high": 0.28, "loss_aggregation": "token_mean",
               "dynamic_sampling": true, "mask_truncated": true, "scale_rewards": "none", "steps": 7,
               "stop_strings": ["</answer>"]})");
  EXPECT_EQ(o.epsilon_high, 0.28);
  EXPECT_EQ(o.loss_aggregation, "token_mean");
  EXPECT_TRUE(o.dynamic_sampling && o.mask_truncated);
  EXPECT_EQ(o.steps, 7);
  EXPECT_EQ(o.stop_strings, std::vector<std::string>{"</answer>"});
}

TEST(GrpoOptions, BadInputNamesTheKey) {
  EXPECT_NE(error_of(R"({"rewards": ["format"], "epsilon_hgih": 0.28})").find("stages.grpo.epsilon_hgih"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"rewards": ["format"], "scale_rewards": "batchh"})").find("scale_rewards"), std::string::npos);
  EXPECT_NE(error_of(R"({"rewards": ["format"], "group_size": 1})").find("group_size"), std::string::npos);
  EXPECT_NE(error_of(R"({"rewards": ["format"], "dual_clip": 0.5})").find("dual_clip"), std::string::npos);
  EXPECT_NE(error_of(R"({"rewards": ["format"], "lr": "fast"})").find("stages.grpo.lr"), std::string::npos);
  EXPECT_NE(error_of(R"({"steps": 3})").find("rewards"), std::string::npos);
  EXPECT_NE(error_of(R"({"rewards": ["format"], "policy_loss": "gpso"})").find("policy_loss"), std::string::npos);
  EXPECT_NE(error_of(R"({"rewards": ["format"], "policy_loss": "cispo", "dual_clip": 3})").find("dual_clip"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"rewards": ["format"], "epsilon": 1.0})").find("epsilon"), std::string::npos);
}

TEST(GrpoOptions, PolicyLossVariants) {
  EXPECT_EQ(read(R"({"rewards": ["format"]})").policy_loss, "ppo");
  GrpoOptions o = read(R"({"rewards": ["format"], "policy_loss": "gspo", "epsilon": 3e-4, "epsilon_high": 4e-4})");
  EXPECT_EQ(o.policy_loss, "gspo");
  o = read(R"({"rewards": ["format"], "policy_loss": "cispo", "epsilon": 1.0, "epsilon_high": 4.0})");
  EXPECT_EQ(o.policy_loss, "cispo");
  EXPECT_EQ(o.epsilon, 1.0);
}

}  // namespace
}  // namespace r1kit::grpo
