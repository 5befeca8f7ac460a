#include "grpo/off_policy.h"

#include <torch/torch.h>

#include "core/check.h"

namespace r1kit::grpo {

OffPolicyCorrection parse_off_policy_correction(const std::string& name, const std::string& where) {
  if (name == "none") return OffPolicyCorrection::kNone;
  if (name == "tis") return OffPolicyCorrection::kTis;
  if (name == "mis") return OffPolicyCorrection::kMis;
  R1_FAIL(where, ": unknown off-policy correction '", name, "' (expected none, tis or mis)");
}

void MismatchStats::add(const MismatchStats& o) {
  tokens += o.tokens;
  abs_diff_sum += o.abs_diff_sum;
  k1_sum += o.k1_sum;
  k3_sum += o.k3_sum;
  weight_sum += o.weight_sum;
  capped += o.capped;
}

torch::Tensor pad_sampler_logprobs(const std::vector<const std::vector<float>*>& rows, int64_t width,
                                   torch::Device device) {
  torch::Tensor out = torch::zeros({static_cast<int64_t>(rows.size()), width}, torch::kFloat32);
  auto acc = out.accessor<float, 2>();
  for (size_t i = 0; i < rows.size(); ++i) {
    R1_CHECK(static_cast<int64_t>(rows[i]->size()) <= width, "sampler log-probs: row ", i, " has ", rows[i]->size(),
             " values for ", width, " completion positions");
    for (size_t t = 0; t < rows[i]->size(); ++t) acc[static_cast<int64_t>(i)][static_cast<int64_t>(t)] = (*rows[i])[t];
  }
  return out.to(device);
}

torch::Tensor importance_weights(const torch::Tensor& trainer_logp, const torch::Tensor& sampler_logp,
                                 const torch::Tensor& mask, OffPolicyCorrection correction, double cap,
                                 MismatchStats* stats) {
  R1_CHECK(trainer_logp.sizes() == sampler_logp.sizes() && mask.sizes() == trainer_logp.sizes(),
           "importance weights: trainer ", trainer_logp.sizes(), ", sampler ", sampler_logp.sizes(), " and mask ",
           mask.sizes(), " must be equal [B, T]");
  R1_CHECK(cap >= 1, "importance weights: cap must be >= 1, got ", cap);
  torch::NoGradGuard no_grad;
  torch::Tensor valid = mask.to(torch::kBool);
  torch::Tensor m = valid.to(torch::kFloat64);
  torch::Tensor d = torch::where(valid, trainer_logp.detach().to(torch::kFloat64) - sampler_logp.to(torch::kFloat64),
                                 torch::zeros({}, torch::kFloat64).to(trainer_logp.device()));
  torch::Tensor ratio = torch::exp(d);
  torch::Tensor w;
  switch (correction) {
    case OffPolicyCorrection::kNone: w = torch::ones_like(ratio); break;
    case OffPolicyCorrection::kTis: w = ratio.clamp_max(cap); break;
    case OffPolicyCorrection::kMis: w = torch::where(ratio > cap, torch::zeros_like(ratio), ratio); break;
  }
  w = torch::where(valid, w, torch::ones_like(w));
  if (stats) {
    stats->tokens += m.sum().item<double>();
    stats->abs_diff_sum += (d.abs() * m).sum().item<double>();
    stats->k1_sum += (-d * m).sum().item<double>();
    stats->k3_sum += ((ratio - 1.0 - d) * m).sum().item<double>();
    stats->weight_sum += (w * m).sum().item<double>();
    stats->capped += ((ratio > cap) & valid).sum().item<double>();
  }
  return w.to(trainer_logp.scalar_type());
}

}  // namespace r1kit::grpo
