// Group-relative advantages, derived by hand.
#include "grpo/advantages.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "core/check.h"

namespace r1kit::grpo {
namespace {

torch::Tensor f64(std::vector<double> v) { return torch::tensor(v, torch::kFloat64); }

TEST(Advantages, GroupScaleUnbiasedStd) {
  // Group (1, 0, 0, 0): mean 0.25; unbiased var = (0.75^2 + 3 * 0.25^2) / 3 = 0.75 / 3 = 0.25,
  // std 0.5. A = (0.75, -0.25, -0.25, -0.25) / (0.5 + 1e-4).
  AdvantageOptions o;
  o.group_size = 4;
  torch::Tensor a = compute_advantages(f64({1, 0, 0, 0}), o);
  const double s = 0.5 + 1e-4;
  EXPECT_NEAR(a[0].item<double>(), 0.75 / s, 1e-15);
  EXPECT_NEAR(a[1].item<double>(), -0.25 / s, 1e-15);
  EXPECT_NEAR(a.sum().item<double>(), 0.0, 1e-15);  // centred: sums to 0 per group
}

TEST(Advantages, ConstantGroupIsExactlyZero) {
  // Group 1 is constant: r - mean = 0 and std = 0, so A = 0 / (0 + eps) = 0 (no NaN).
  AdvantageOptions o;
  o.group_size = 2;
  torch::Tensor a = compute_advantages(f64({1, 0, 1, 1}), o);
  EXPECT_EQ(a[2].item<double>(), 0.0);
  EXPECT_EQ(a[3].item<double>(), 0.0);
  // Group 0: mean 0.5, std sqrt(0.5) (unbiased, not the biased 0.5).
  EXPECT_NEAR(a[0].item<double>(), 0.5 / (std::sqrt(0.5) + 1e-4), 1e-15);
  EXPECT_TRUE(constant_groups(f64({1, 0, 1, 1}), 2).equal(torch::tensor({false, true})));
}

TEST(Advantages, BatchScaleCentresPerGroup) {
  // Rewards (0, 0, 1, 1): both groups constant, batch std = sqrt(4 * 0.25 / 3) > 0,
  // yet centring is per group, so every A is 0 (TRL scale_rewards="batch").
  AdvantageOptions o;
  o.group_size = 2;
  o.scale = AdvantageScale::kBatch;
  EXPECT_EQ(compute_advantages(f64({0, 0, 1, 1}), o).abs().sum().item<double>(), 0.0);
  // Rewards (1, 0, 3, 1): group means 0.5 and 2; batch mean 1.25,
  // unbiased batch var = (0.0625 + 1.5625 + 3.0625 + 0.0625) / 3 = 4.75 / 3.
  RewardGroupStats stats;
  torch::Tensor a = compute_advantages(f64({1, 0, 3, 1}), o, &stats);
  const double bs = std::sqrt(4.75 / 3);
  EXPECT_NEAR(stats.batch_std, bs, 1e-15);
  EXPECT_NEAR(a[0].item<double>(), 0.5 / (bs + 1e-4), 1e-15);
  EXPECT_NEAR(a[2].item<double>(), 1.0 / (bs + 1e-4), 1e-15);
}

TEST(Advantages, NoneScaleIsDrGrpo) {
  AdvantageOptions o;
  o.group_size = 2;
  o.scale = AdvantageScale::kNone;
  torch::Tensor a = compute_advantages(f64({3, 1, 0.5, 0.25}), o);
  EXPECT_TRUE(torch::allclose(a, f64({1, -1, 0.125, -0.125}), 0, 1e-15));
}

TEST(Advantages, Float32MatchesFloat64) {
  AdvantageOptions o;
  o.group_size = 4;
  torch::Tensor r = torch::rand({16}, torch::kFloat64);
  torch::Tensor a64 = compute_advantages(r, o);
  torch::Tensor a32 = compute_advantages(r.to(torch::kFloat32), o);
  EXPECT_EQ(a32.dtype(), torch::kFloat32);
  EXPECT_LT((a32.to(torch::kFloat64) - a64).abs().max().item<double>(), 1e-5);
}

TEST(Advantages, CombineRewardsWeightedSum) {
  // [B=2, 2 functions]: accuracy and format with weights 1 and 0.1.
  torch::Tensor per = f64({1, 1, 0, 1}).view({2, 2});
  torch::Tensor total = combine_rewards(per, {1.0, 0.1});
  EXPECT_NEAR(total[0].item<double>(), 1.1, 1e-15);
  EXPECT_NEAR(total[1].item<double>(), 0.1, 1e-15);
  EXPECT_THROW(combine_rewards(per, {1.0}), Error);
}

TEST(Advantages, BadInputIsAnError) {
  AdvantageOptions o;
  o.group_size = 3;
  EXPECT_THROW(compute_advantages(f64({1, 2, 3, 4}), o), Error);  // 4 is not a multiple of 3
  o.group_size = 1;
  EXPECT_THROW(compute_advantages(f64({1, 2}), o), Error);
  EXPECT_THROW(parse_advantage_scale("grup"), Error);
}

}  // namespace
}  // namespace r1kit::grpo
