#include "grpo/reward_mask.h"

#include <torch/torch.h>

#include "core/check.h"

namespace r1kit::grpo {

GroupValidity group_validity(const std::vector<rewards::SampleScore>& scores, int64_t min_valid) {
  GroupValidity v;
  v.valid.resize(scores.size());
  for (size_t s = 0; s < scores.size(); ++s) {
    v.valid[s] = scores[s].errors == 0;
    v.num_valid += v.valid[s];
  }
  v.keep = v.num_valid >= std::max<int64_t>(2, min_valid);
  return v;
}

torch::Tensor ragged_group_advantages(const std::vector<std::vector<double>>& groups, const AdvantageOptions& o) {
  R1_CHECK(o.eps >= 0, "advantages: eps must be >= 0, got ", o.eps);
  std::vector<double> all;
  for (size_t g = 0; g < groups.size(); ++g) {
    R1_CHECK(groups[g].size() >= 2, "advantages: group ", g, " has ", groups[g].size(),
             " valid rewards; at least 2 are needed");
    all.insert(all.end(), groups[g].begin(), groups[g].end());
  }
  const auto f64 = torch::TensorOptions().dtype(torch::kFloat64);
  if (all.empty()) return torch::empty({0}, f64);
  const double batch_std = all.size() > 1 ? torch::tensor(all, f64).std(/*unbiased=*/true).item<double>() : 0.0;
  std::vector<torch::Tensor> out;
  for (const auto& g : groups) {
    torch::Tensor r = torch::tensor(g, f64);
    torch::Tensor centred = r - r.mean();
    switch (o.scale) {
      case AdvantageScale::kGroup: out.push_back(centred / (r.std(/*unbiased=*/true) + o.eps)); break;
      case AdvantageScale::kBatch: out.push_back(centred / (batch_std + o.eps)); break;
      case AdvantageScale::kNone: out.push_back(centred); break;
    }
  }
  return torch::cat(out);
}

}  // namespace r1kit::grpo
