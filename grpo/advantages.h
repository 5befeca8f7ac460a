// Group-relative advantages (GRPO): each completion's reward compared with the other completions
// sampled for the same prompt. Pure functions on tensors; float32 and float64 (computed in the
// rewards' dtype).
//
// Layout: rows g*G .. g*G+G-1 of a [B] reward vector form group g (TRL's repeat_interleave layout).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace r1kit::grpo {

// What divides the group-centred reward r_i - mean_group.
enum class AdvantageScale {
  kGroup,  // the group's unbiased std (GRPO, DeepSeekMath)
  kBatch,  // the whole batch's unbiased std; centring stays per group (TRL scale_rewards="batch")
  kNone,   // nothing (Dr. GRPO): A_i = r_i - mean_group
};

// "group" | "batch" | "none"; anything else throws Error naming `where`.
AdvantageScale parse_advantage_scale(const std::string& name, const std::string& where = "scale_rewards");
const char* advantage_scale_name(AdvantageScale scale);

struct AdvantageOptions {
  int64_t group_size = 2;                      // G >= 2 completions per prompt; B must be a multiple
  AdvantageScale scale = AdvantageScale::kGroup;  // see AdvantageScale
  double eps = 1e-4;                           // added to the std before dividing (TRL 1e-4, veRL 1e-6)
};

// Per-group statistics behind the advantages, for logging and debugging.
struct RewardGroupStats {
  torch::Tensor group_mean;  // [B/G]
  torch::Tensor group_std;   // [B/G], unbiased (Bessel)
  double batch_std = 0.0;    // unbiased over all B rows
};

// A_i = (r_i - mean_g) / (std_g + eps) for scale group; std_batch for batch; no division for none.
// A constant group gives exactly 0 (no NaN). `rewards` is [B], floating point; result has its dtype.
// When `stats` is non-null it receives the group statistics.
torch::Tensor compute_advantages(const torch::Tensor& rewards, const AdvantageOptions& options,
                                 RewardGroupStats* stats = nullptr);

// Total reward per completion: `per_function` is [B, n_rewards] (one column per reward function),
// weights has n_rewards entries; returns [B] = per_function @ weights, in per_function's dtype.
torch::Tensor combine_rewards(const torch::Tensor& per_function, const std::vector<double>& weights);

// Which groups have rewards that all agree (max == min): [B/G] bool. DAPO's dynamic sampling drops
// them because their advantages are all 0 and they carry no policy gradient.
torch::Tensor constant_groups(const torch::Tensor& rewards, int64_t group_size);

}  // namespace r1kit::grpo
