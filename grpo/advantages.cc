#include "grpo/advantages.h"

#include <torch/torch.h>

#include "core/check.h"

namespace r1kit::grpo {

AdvantageScale parse_advantage_scale(const std::string& name, const std::string& where) {
  if (name == "group") return AdvantageScale::kGroup;
  if (name == "batch") return AdvantageScale::kBatch;
  if (name == "none") return AdvantageScale::kNone;
  R1_FAIL(where, ": unknown reward scaling '", name, "' (expected group, batch or none)");
}

const char* advantage_scale_name(AdvantageScale scale) {
  switch (scale) {
    case AdvantageScale::kGroup: return "group";
    case AdvantageScale::kBatch: return "batch";
    case AdvantageScale::kNone: return "none";
  }
  return "?";
}

namespace {
torch::Tensor grouped(const torch::Tensor& rewards, int64_t group_size) {
  R1_CHECK(rewards.dim() == 1, "advantages: rewards must be [B], got ", rewards.sizes());
  R1_CHECK(rewards.is_floating_point(), "advantages: rewards must be floating point, got ", rewards.dtype());
  R1_CHECK(group_size >= 2, "advantages: group_size must be >= 2, got ", group_size);
  R1_CHECK(rewards.size(0) % group_size == 0, "advantages: batch of ", rewards.size(0),
           " rewards is not a multiple of group_size ", group_size);
  return rewards.view({-1, group_size});
}
}  // namespace

torch::Tensor compute_advantages(const torch::Tensor& rewards, const AdvantageOptions& options,
                                 RewardGroupStats* stats) {
  R1_CHECK(options.eps >= 0, "advantages: eps must be >= 0, got ", options.eps);
  torch::NoGradGuard no_grad;
  torch::Tensor groups = grouped(rewards, options.group_size);  // [B/G, G]
  torch::Tensor mean = groups.mean(1, /*keepdim=*/true);
  torch::Tensor group_std = groups.std(1, /*unbiased=*/true, /*keepdim=*/true);
  torch::Tensor centred = groups - mean;
  torch::Tensor adv;
  double batch_std = rewards.size(0) > 1 ? rewards.std(/*unbiased=*/true).item<double>() : 0.0;
  switch (options.scale) {
    case AdvantageScale::kGroup: adv = centred / (group_std + options.eps); break;
    case AdvantageScale::kBatch: adv = centred / (batch_std + options.eps); break;
    case AdvantageScale::kNone: adv = centred; break;
  }
  if (stats) {
    stats->group_mean = mean.squeeze(1);
    stats->group_std = group_std.squeeze(1);
    stats->batch_std = batch_std;
  }
  return adv.reshape({-1});
}

torch::Tensor combine_rewards(const torch::Tensor& per_function, const std::vector<double>& weights) {
  R1_CHECK(per_function.dim() == 2, "combine_rewards: expected [B, n_rewards], got ", per_function.sizes());
  R1_CHECK(per_function.size(1) == static_cast<int64_t>(weights.size()), "combine_rewards: ",
           per_function.size(1), " reward columns but ", weights.size(), " weights");
  R1_CHECK(per_function.is_floating_point(), "combine_rewards: rewards must be floating point");
  torch::Tensor w = torch::tensor(weights, torch::TensorOptions().dtype(torch::kFloat64))
                        .to(per_function.dtype())
                        .to(per_function.device());
  return (per_function * w).sum(1);
}

torch::Tensor constant_groups(const torch::Tensor& rewards, int64_t group_size) {
  torch::Tensor groups = grouped(rewards, group_size);
  return std::get<0>(groups.max(1)) == std::get<0>(groups.min(1));
}

}  // namespace r1kit::grpo
