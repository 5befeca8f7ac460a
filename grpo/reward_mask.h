// Reward integrity in GRPO: a sample whose reward could not be computed (a reward errored or timed
// out: rewards::SampleScore::errors > 0) is masked out of the loss, never scored as 0. Its group's
// advantages are computed over the group's valid samples only, and a group left with fewer than
// `min_valid` valid samples is dropped (with fewer than two there is nothing to compare).
//
//   GroupValidity v = group_validity(group_scores, options.min_valid_samples);
//   if (!v.keep) ++dropped;                      // else train on the samples with v.valid[s]
//   torch::Tensor adv = ragged_group_advantages(valid_rewards_per_group, adv_options);
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "grpo/advantages.h"
#include "rewards/reward_set.h"

namespace r1kit::grpo {

struct GroupValidity {
  std::vector<bool> valid;  // per sample: every reward produced a score
  int64_t num_valid = 0;
  bool keep = false;        // num_valid >= min_valid
};

GroupValidity group_validity(const std::vector<rewards::SampleScore>& scores, int64_t min_valid);

// Group-relative advantages for groups of different sizes (each group's valid samples), flattened
// in order. Same definitions as compute_advantages (unbiased std; "batch" divides by the std of
// every reward passed in); equal to it when every group has the same size. Each group needs >= 2
// rewards. Computed in float64.
torch::Tensor ragged_group_advantages(const std::vector<std::vector<double>>& group_rewards,
                                      const AdvantageOptions& options);

}  // namespace r1kit::grpo
