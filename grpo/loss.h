// The GRPO objective per token: PPO-clipped surrogate with clip-higher (DAPO) and optional dual
// clip (veRL), k3 KL to a frozen reference, and three ways to aggregate tokens into one loss.
// Like torchtune's GRPOLoss.forward it returns the loss plus detached statistics.
//
//   rho = exp(logp - old_logp)                     rho_c = clamp(rho, 1 - eps_low, 1 + eps_high)
//   J   = min(rho * A, rho_c * A)                  dual clip (A < 0 only): J = max(J, c * A)
//   KL  = exp(ref - logp) - (ref - logp) - 1       (k3, >= 0, = 0 when ref == logp)
//   l   = -J + beta * KL
//
// Policy-loss variants (the `policy_loss` option; KL and aggregation are the same for all three):
//   ppo    the token-level clipped surrogate above (GRPO / DAPO / Dr. GRPO)
//   gspo   sequence-level ratio s_i = exp(sum_t m (logp - old_logp) / n_i) and sequence-level clipping
//          (Qwen's GSPO). Written per token in the GSPO-token form
//          rho_t = exp(logp_t - sg(logp_t) + sg(log s_i)): its value is s_i at every token of row i and
//          its gradient equals that of the sequence objective, for every aggregation.
//   cispo  clipped, stop-gradient IS weight times the log-prob (MiniMax-M1's CISPO):
//          J = sg(clamp(rho, 1 - eps_low, 1 + eps_high)) * A * logp; every token keeps its gradient
//          sg(w) * A. eps_low may be 1 (no floor). Dual clip does not apply.
//
// Aggregations (m = mask, n_i = tokens of row i, N = all tokens, L = max_completion_length):
//   grpo        (1/B) sum_i (sum_t m l) / max(1, n_i)     (TRL; empty rows count in B)
//   token_mean  sum m l / max(1, N)                        (TRL bnpo/dapo, veRL token-mean)
//   dr_grpo     sum m l / (B * L)                          (Dr. GRPO, TRL dr_grpo)
//   seq_mean_nonempty  mean over non-empty rows of row means (veRL seq-mean-token-mean)
//
// Gradient accumulation: pass a LossNormalizer with the denominators of the WHOLE accumulated
// batch (all micro-batches of one optimiser step). Each micro-batch loss is then its share of the
// full-batch loss, so the accumulated gradient equals the gradient of the unsplit batch, for every
// aggregation (for token_mean this is TRL's "dapo" global token count).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace r1kit::grpo {

enum class LossAggregation { kGrpo, kTokenMean, kDrGrpo, kSeqMeanNonempty };
enum class PolicyLoss { kPpo, kGspo, kCispo };

// "ppo" | "gspo" | "cispo"; else Error naming `where`.
PolicyLoss parse_policy_loss(const std::string& name, const std::string& where = "policy_loss");
const char* policy_loss_name(PolicyLoss loss);

// "grpo" | "token_mean" | "dr_grpo" | "seq_mean_nonempty"; else Error naming `where`.
LossAggregation parse_loss_aggregation(const std::string& name, const std::string& where = "loss_aggregation");
const char* loss_aggregation_name(LossAggregation aggregation);

struct GrpoLossOptions {
  PolicyLoss policy_loss = PolicyLoss::kPpo;  // ppo | gspo | cispo (see above)
  double eps_low = 0.2;    // lower clip: ratio floor 1 - eps_low
  double eps_high = 0.2;   // upper clip: ratio ceiling 1 + eps_high (DAPO clip-higher: 0.28)
  double dual_clip = 0.0;  // c > 1 caps the loss of A < 0 tokens at c*|A| (veRL clip_ratio_c); 0 = off
  double beta = 0.0;       // KL coefficient; 0 = no KL term (the reference log-probs may be undefined)
  LossAggregation aggregation = LossAggregation::kGrpo;  // see above
  int64_t max_completion_length = 0;  // L for dr_grpo (the configured maximum, not the padded T)
};

// Denominators of the full accumulated batch; 0 = use this call's own value.
struct LossNormalizer {
  int64_t num_rows = 0;           // B over all micro-batches (grpo, dr_grpo)
  double num_tokens = 0.0;        // N over all micro-batches (token_mean)
  int64_t num_nonempty_rows = 0;  // rows with n_i > 0 over all micro-batches (seq_mean_nonempty)
};

// Detached statistics over the unmasked tokens of this call. Fractions divide by max(1, N);
// the *_count fields let a caller sum micro-batches and divide once.
struct GrpoLossStats {
  double num_tokens = 0;        // N
  double clip_low_count = 0;    // rho < 1 - eps_low and A < 0 (the clipped term is active); cispo: A != 0
  double clip_high_count = 0;   // rho > 1 + eps_high and A > 0; cispo: A != 0 (the weight was clamped)
  double dual_clip_count = 0;   // A < 0 and max(rho, rho_c) > c (dual clip on)
  double kl_sum = 0;            // sum of m * KL (computed even when beta = 0)
  double ratio_sum = 0;         // sum of m * rho
  double ratio_min = 0;         // over unmasked tokens (0 when N = 0)
  double ratio_max = 0;
  double clip_low_frac = 0;     // clip_low_count / max(1, N)      TRL clip_ratio/low_mean
  double clip_high_frac = 0;    // clip_high_count / max(1, N)     TRL clip_ratio/high_mean
  double clip_region_frac = 0;  // low + high                      TRL clip_ratio/region_mean, veRL pg_clipfrac
  double dual_clip_frac = 0;    // dual_clip_count / max(1, N)     veRL pg_clipfrac_lower
  double kl_mean = 0;           // kl_sum / max(1, N)              TRL kl
  double ratio_mean = 0;        // ratio_sum / max(1, N)
};

struct GrpoLossOutput {
  torch::Tensor loss;            // scalar, differentiable w.r.t. logp
  torch::Tensor per_token_loss;  // [B, T] l * m, differentiable
  torch::Tensor ratio;           // [B, T] rho * m, detached (gspo: s_i at every unmasked token)
  torch::Tensor per_token_kl;    // [B, T] KL * m, detached
  GrpoLossStats stats;
};

// logp: [B, T] policy log-probs of the sampled tokens (the variable the gradient flows into).
// old_logp, ref_logp: [B, T] constants (ref_logp may be undefined when beta == 0).
// advantages: [B]. mask: [B, T], 1 = completion token that enters the loss (bool or numeric).
// Values at masked positions are ignored entirely (they may be junk, even inf).
// All floating tensors must share one dtype (float32 or float64) and device.
// is_weights: optional [B, T] constants multiplying each token's policy term (not the KL term): the
// off-policy correction between sampler and trainer (grpo/off_policy.h).
GrpoLossOutput grpo_loss(const torch::Tensor& logp, const torch::Tensor& old_logp, const torch::Tensor& ref_logp,
                         const torch::Tensor& advantages, const torch::Tensor& mask, const GrpoLossOptions& options,
                         const LossNormalizer& normalizer = {}, const torch::Tensor& is_weights = {});

// Aggregates masked per-token losses [B, T] (already multiplied by the mask) with `aggregation`.
torch::Tensor aggregate_loss(const torch::Tensor& per_token_loss, const torch::Tensor& mask,
                             LossAggregation aggregation, int64_t max_completion_length,
                             const LossNormalizer& normalizer = {});

}  // namespace r1kit::grpo
