#include "grpo/loss.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/check.h"

namespace r1kit::grpo {

LossAggregation parse_loss_aggregation(const std::string& name, const std::string& where) {
  if (name == "grpo") return LossAggregation::kGrpo;
  if (name == "token_mean") return LossAggregation::kTokenMean;
  if (name == "dr_grpo") return LossAggregation::kDrGrpo;
  if (name == "seq_mean_nonempty") return LossAggregation::kSeqMeanNonempty;
  R1_FAIL(where, ": unknown loss aggregation '", name, "' (expected grpo, token_mean, dr_grpo or seq_mean_nonempty)");
}

PolicyLoss parse_policy_loss(const std::string& name, const std::string& where) {
  if (name == "ppo") return PolicyLoss::kPpo;
  if (name == "gspo") return PolicyLoss::kGspo;
  if (name == "cispo") return PolicyLoss::kCispo;
  R1_FAIL(where, ": unknown policy loss '", name, "' (expected ppo, gspo or cispo)");
}

const char* policy_loss_name(PolicyLoss loss) {
  switch (loss) {
    case PolicyLoss::kPpo: return "ppo";
    case PolicyLoss::kGspo: return "gspo";
    case PolicyLoss::kCispo: return "cispo";
  }
  return "?";
}

const char* loss_aggregation_name(LossAggregation aggregation) {
  switch (aggregation) {
    case LossAggregation::kGrpo: return "grpo";
    case LossAggregation::kTokenMean: return "token_mean";
    case LossAggregation::kDrGrpo: return "dr_grpo";
    case LossAggregation::kSeqMeanNonempty: return "seq_mean_nonempty";
  }
  return "?";
}

torch::Tensor aggregate_loss(const torch::Tensor& per_token_loss, const torch::Tensor& mask,
                             LossAggregation aggregation, int64_t max_completion_length,
                             const LossNormalizer& normalizer) {
  R1_CHECK(per_token_loss.dim() == 2 && per_token_loss.sizes() == mask.sizes(),
           "grpo loss: per-token loss ", per_token_loss.sizes(), " and mask ", mask.sizes(), " must be equal [B, T]");
  torch::Tensor m = mask.to(per_token_loss.dtype());
  const int64_t rows = normalizer.num_rows > 0 ? normalizer.num_rows : per_token_loss.size(0);
  switch (aggregation) {
    case LossAggregation::kGrpo: {
      torch::Tensor n = m.sum(1).clamp_min(1.0);
      return (per_token_loss.sum(1) / n).sum() / static_cast<double>(rows);
    }
    case LossAggregation::kTokenMean: {
      double tokens = normalizer.num_tokens > 0 ? normalizer.num_tokens : m.sum().item<double>();
      return per_token_loss.sum() / std::max(1.0, tokens);
    }
    case LossAggregation::kDrGrpo: {
      R1_CHECK(max_completion_length > 0, "grpo loss: dr_grpo needs max_completion_length > 0, got ",
               max_completion_length);
      return per_token_loss.sum() / static_cast<double>(rows * max_completion_length);
    }
    case LossAggregation::kSeqMeanNonempty: {
      torch::Tensor n = m.sum(1);
      int64_t nonempty = normalizer.num_nonempty_rows > 0 ? normalizer.num_nonempty_rows
                                                          : (n > 0).sum().item<int64_t>();
      return (per_token_loss.sum(1) / n.clamp_min(1.0)).sum() / static_cast<double>(std::max<int64_t>(1, nonempty));
    }
  }
  R1_FAIL("grpo loss: bad aggregation");
}

GrpoLossOutput grpo_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& ref_logp,
                         const torch::Tensor& advantages, const torch::Tensor& mask, const GrpoLossOptions& options,
                         const LossNormalizer& normalizer, const torch::Tensor& is_weights) {
  R1_CHECK(logp.dim() == 2, "grpo loss: logp must be [B, T], got ", logp.sizes());
  R1_CHECK(logp.is_floating_point(), "grpo loss: logp must be floating point, got ", logp.dtype());
  R1_CHECK(old_logp.sizes() == logp.sizes(), "grpo loss: old_logp ", old_logp.sizes(), " != logp ", logp.sizes());
  R1_CHECK(mask.sizes() == logp.sizes(), "grpo loss: mask ", mask.sizes(), " != logp ", logp.sizes());
  R1_CHECK(advantages.dim() == 1 && advantages.size(0) == logp.size(0), "grpo loss: advantages ",
           advantages.sizes(), " must be [B] with B = ", logp.size(0));
  R1_CHECK(old_logp.dtype() == logp.dtype() && advantages.dtype() == logp.dtype(),
           "grpo loss: logp, old_logp and advantages must share one dtype");
  const bool cispo = options.policy_loss == PolicyLoss::kCispo;
  R1_CHECK(options.eps_low >= 0 && (options.eps_low < 1 || (cispo && options.eps_low == 1)),
           "grpo loss: eps_low must be in [0, 1) (cispo: [0, 1]), got ", options.eps_low);
  R1_CHECK(!cispo || options.dual_clip == 0, "grpo loss: dual_clip does not apply to cispo (its weight is clamped)");
  R1_CHECK(options.eps_high >= 0, "grpo loss: eps_high must be >= 0, got ", options.eps_high);
  R1_CHECK(options.dual_clip == 0 || options.dual_clip > 1, "grpo loss: dual_clip must be 0 (off) or > 1, got ",
           options.dual_clip);
  R1_CHECK(options.beta >= 0, "grpo loss: beta must be >= 0, got ", options.beta);
  const bool has_ref = ref_logp.defined();
  R1_CHECK(has_ref || options.beta == 0, "grpo loss: beta = ", options.beta, " needs reference log-probs");
  if (has_ref) {
    R1_CHECK(ref_logp.sizes() == logp.sizes() && ref_logp.dtype() == logp.dtype(), "grpo loss: ref_logp ",
             ref_logp.sizes(), " must match logp ", logp.sizes(), " in shape and dtype");
  }

  torch::Tensor valid = mask.to(torch::kBool);
  torch::Tensor m = valid.to(logp.dtype());
  torch::Tensor zero = torch::zeros({}, logp.options());
  // Zero the log-ratios at masked positions BEFORE exp: junk there (even inf) must not reach the
  // loss or turn into 0 * inf = NaN in the backward pass.
  torch::Tensor log_ratio = torch::where(valid, logp - old_logp, zero);
  if (options.policy_loss == PolicyLoss::kGspo) {
    // GSPO-token form: value log s_i everywhere in row i, gradient d logp_t (see loss.h).
    torch::Tensor seq_log_ratio = (log_ratio * m).sum(1) / m.sum(1).clamp_min(1.0);  // [B]
    log_ratio = torch::where(valid, logp - logp.detach() + seq_log_ratio.detach().unsqueeze(1), zero);
  }
  torch::Tensor ratio = torch::exp(log_ratio);
  torch::Tensor clipped = torch::clamp(ratio, 1.0 - options.eps_low, 1.0 + options.eps_high);
  torch::Tensor adv = advantages.unsqueeze(1);  // [B, 1]
  torch::Tensor objective;
  if (cispo) {
    // The clamped weight is a constant: all tokens keep the gradient sg(w) * A of their log-prob.
    objective = clipped.detach() * adv * torch::where(valid, logp, zero);
  } else {
    objective = torch::min(ratio * adv, clipped * adv);
  }
  torch::Tensor negative_adv = (adv < 0).expand_as(objective);
  if (options.dual_clip > 0) {
    objective = torch::where(negative_adv, torch::max(objective, options.dual_clip * adv), objective);
  }

  torch::Tensor kl;
  if (has_ref) {
    torch::Tensor delta = torch::where(valid, ref_logp - logp, zero);
    kl = torch::exp(delta) - delta - 1.0;
  } else {
    kl = torch::zeros_like(logp);
  }
  torch::Tensor per_token = -objective;
  if (is_weights.defined()) {
    R1_CHECK(is_weights.sizes() == logp.sizes(), "grpo loss: is_weights ", is_weights.sizes(), " != logp ",
             logp.sizes());
    per_token = per_token * torch::where(valid, is_weights.detach().to(logp.dtype()), zero);
  }
  if (options.beta > 0) per_token = per_token + options.beta * kl;
  per_token = per_token * m;

  GrpoLossOutput out;
  out.per_token_loss = per_token;
  out.loss = aggregate_loss(per_token, valid, options.aggregation, options.max_completion_length, normalizer);

  // Statistics: detached, over unmasked tokens.
  torch::NoGradGuard no_grad;
  torch::Tensor r = ratio.detach();
  out.ratio = r * m;
  out.per_token_kl = kl.detach() * m;
  GrpoLossStats& s = out.stats;
  s.num_tokens = m.sum().item<double>();
  torch::Tensor positive_adv = (adv > 0).expand_as(r);
  if (cispo) {  // the weight is clamped whatever the sign of A; A = 0 tokens carry no signal
    negative_adv = (adv != 0).expand_as(r);
    positive_adv = negative_adv;
  }
  s.clip_low_count = (valid & negative_adv & (r < 1.0 - options.eps_low)).sum().item<double>();
  s.clip_high_count = (valid & positive_adv & (r > 1.0 + options.eps_high)).sum().item<double>();
  if (options.dual_clip > 0) {
    s.dual_clip_count =
        (valid & negative_adv & (torch::max(r, clipped.detach()) > options.dual_clip)).sum().item<double>();
  }
  s.kl_sum = out.per_token_kl.sum().item<double>();
  s.ratio_sum = out.ratio.sum().item<double>();
  if (s.num_tokens > 0) {
    torch::Tensor valid_ratios = r.masked_select(valid);
    s.ratio_min = valid_ratios.min().item<double>();
    s.ratio_max = valid_ratios.max().item<double>();
  }
  const double denom = std::max(1.0, s.num_tokens);
  s.clip_low_frac = s.clip_low_count / denom;
  s.clip_high_frac = s.clip_high_count / denom;
  s.clip_region_frac = s.clip_low_frac + s.clip_high_frac;
  s.dual_clip_frac = s.dual_clip_count / denom;
  s.kl_mean = s.kl_sum / denom;
  s.ratio_mean = s.ratio_sum / denom;
  return out;
}

}  // namespace r1kit::grpo
