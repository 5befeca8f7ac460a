// Reward masking (grpo/reward_mask.h): which samples and groups count, and advantages of groups
// of different sizes, against compute_advantages (full groups) and a float64 hand computation.
#include "grpo/reward_mask.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace r1kit::grpo {
namespace {

rewards::SampleScore score(double total, int errors) {
  rewards::SampleScore s;
  s.total = total;
  s.errors = errors;
  return s;
}

TEST(RewardMask, ErroredSamplesAreInvalidAndSmallGroupsDropped) {
  GroupValidity v = group_validity({score(1, 0), score(0, 1), score(0.5, 0), score(0, 2)}, 2);
  EXPECT_EQ(v.valid, (std::vector<bool>{true, false, true, false}));
  EXPECT_EQ(v.num_valid, 2);
  EXPECT_TRUE(v.keep);
  EXPECT_FALSE(group_validity({score(1, 0), score(0, 1), score(0.5, 0), score(0, 2)}, 3).keep);
  EXPECT_FALSE(group_validity({score(1, 0), score(0, 1)}, 2).keep);  // one valid sample: nothing to compare
  EXPECT_FALSE(group_validity({score(1, 0), score(0, 1), score(0, 1)}, 1).keep);  // min_valid is at least 2
  EXPECT_TRUE(group_validity({score(1, 0), score(0, 0)}, 1).keep);
}

TEST(RewardMask, FullGroupsEqualComputeAdvantages) {
  torch::manual_seed(3);
  const torch::Tensor r = torch::rand({4 * 6}, torch::kFloat64);
  std::vector<std::vector<double>> groups(4);
  for (int64_t i = 0; i < r.size(0); ++i) groups[i / 6].push_back(r[i].item<double>());
  for (AdvantageScale scale : {AdvantageScale::kGroup, AdvantageScale::kBatch, AdvantageScale::kNone}) {
    AdvantageOptions o;
    o.group_size = 6;
    o.scale = scale;
    const double diff = (ragged_group_advantages(groups, o) - compute_advantages(r, o)).abs().max().item<double>();
    std::printf("[ mask ] scale %s: max |ragged - compute_advantages| = %.3g\n", advantage_scale_name(scale), diff);
    EXPECT_LT(diff, 1e-14);
  }
}

TEST(RewardMask, AdvantagesUseOnlyTheValidSamples) {
  // Group 0 has 4 valid samples, group 1 has 2: each is normalised by its own mean and std.
  const std::vector<std::vector<double>> groups = {{1.0, 0.0, 0.5, 0.25}, {2.0, 4.0}};
  AdvantageOptions o;
  o.eps = 1e-4;
  const torch::Tensor a = ragged_group_advantages(groups, o);
  ASSERT_EQ(a.size(0), 6);
  std::vector<double> want;
  for (const auto& g : groups) {
    double m = 0, v = 0;
    for (double x : g) m += x;
    m /= g.size();
    for (double x : g) v += (x - m) * (x - m);
    const double sd = std::sqrt(v / (g.size() - 1));
    for (double x : g) want.push_back((x - m) / (sd + o.eps));
  }
  double max_diff = 0;
  for (int64_t i = 0; i < 6; ++i) max_diff = std::max(max_diff, std::abs(a[i].item<double>() - want[i]));
  std::printf("[ mask ] ragged groups vs float64 by hand: max diff %.3g\n", max_diff);
  EXPECT_LT(max_diff, 1e-12);
  o.scale = AdvantageScale::kBatch;  // centred per group, divided by the std of all six rewards
  const torch::Tensor b = ragged_group_advantages(groups, o);
  const double batch_std = torch::tensor(std::vector<double>{1.0, 0.0, 0.5, 0.25, 2.0, 4.0}, torch::kFloat64).std().item<double>();
  EXPECT_NEAR(b[4].item<double>(), (2.0 - 3.0) / (batch_std + 1e-4), 1e-12);
  EXPECT_THROW(ragged_group_advantages({{1.0}}, o), std::exception);
}

}  // namespace
}  // namespace r1kit::grpo
