// Sampler-trainer mismatch and the off-policy correction of asynchronous (or mixed-precision)
// rollouts. The sampler records log p_s of every token it draws (rollout/rollout.h Sample::logprobs);
// the trainer computes log p_t of the same tokens under its current ("old") policy. Per token,
// d = log p_t - log p_s and
//   tis  w = min(exp(d), cap)                 truncated importance sampling (veRL rollout_is "token")
//   mis  w = exp(d) if exp(d) <= cap, else 0  masked importance sampling (tokens above the cap dropped)
//   none w = 1
// w is a constant that multiplies each token's policy-gradient term (grpo_loss is_weights).
// Mismatch metrics over unmasked tokens: mean |d|, KL(p_s || p_t) estimated on the sampler's tokens
// as k1 = mean(-d) and k3 = mean(exp(d) - 1 - d) (>= 0). Both are 0 when sampler and trainer run
// the same weights at the same precision (up to float rounding of the two code paths).
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

namespace r1kit::grpo {

enum class OffPolicyCorrection { kNone, kTis, kMis };

// "none" | "tis" | "mis"; else Error naming `where`.
OffPolicyCorrection parse_off_policy_correction(const std::string& name,
                                                const std::string& where = "off_policy_correction");

// Sums over unmasked tokens; divide by tokens.
struct MismatchStats {
  double tokens = 0;
  double abs_diff_sum = 0;  // sum |d|
  double k1_sum = 0;        // sum -d
  double k3_sum = 0;        // sum exp(d) - 1 - d
  double weight_sum = 0;    // sum w
  double capped = 0;        // tokens with exp(d) > cap (truncated or masked)
  void add(const MismatchStats& o);
};

// Pads per-row sampler log-probs into [B, C] (right padding with 0, the layout of
// CompletionBatch::completion_mask). Each row must hold exactly its completion's length.
torch::Tensor pad_sampler_logprobs(const std::vector<const std::vector<float>*>& rows, int64_t width,
                                   torch::Device device);

// Detached weights [B, T] (1 at masked positions) and the statistics of this call.
torch::Tensor importance_weights(const torch::Tensor& trainer_logp, const torch::Tensor& sampler_logp,
                                 const torch::Tensor& mask, OffPolicyCorrection correction, double cap,
                                 MismatchStats* stats);

}  // namespace r1kit::grpo
