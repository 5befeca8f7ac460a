// Token-level knowledge-distillation divergences between a student's and a teacher's next-token
// distributions (the two models must share a tokenizer). With p_S = softmax(z_S / T) and
// p_T = softmax(z_T / T) for one position:
//
//   forward_kl   KL(p_T || p_S) = sum_v p_T (log p_T - log p_S)     (classic KD: mass-covering)
//   reverse_kl   KL(p_S || p_T) = sum_v p_S (log p_S - log p_T)     (mode-seeking; on-policy distillation)
//   jsd          generalized Jensen-Shannon (GKD, Agarwal et al. 2024):
//                beta KL(p_T || M) + (1 - beta) KL(p_S || M),  M = beta p_T + (1 - beta) p_S;
//                beta = 0 and beta = 1 mean forward and reverse KL (TRL's GKDTrainer convention).
//
// top_k > 0 restricts both distributions to the teacher's k largest logits at that position and
// renormalises them there (the support of stored or truncated teacher logits); no T^2 factor.
// Checked against a float64 PyTorch reference (tests/reference/gen_kd_goldens.py).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace r1kit {
class ConfigNode;
}

namespace r1kit::distill {

struct KdOptions {
  std::string loss = "forward_kl";  // "forward_kl" | "reverse_kl" | "jsd"
  double beta = 0.5;                // jsd: weight of the teacher in the mixture, in [0, 1]
  double temperature = 1.0;         // both logits are divided by it (> 0)
  int64_t top_k = 0;                // > 0: only the teacher's top-k tokens (0 = the whole vocabulary)
};

// Throws Error (naming `where`) for an unknown loss or an out-of-range value.
void validate_kd_options(const KdOptions& o, const std::string& where = "kd");
// Reads loss (`default_loss` when absent), beta, temperature, top_k from a config node (validated;
// errors name file and key).
KdOptions read_kd_options(ConfigNode& node, const std::string& default_loss = "forward_kl");

// Per-row divergence [N] between student_logits [N, V] and teacher_logits [N, V] (same shape; the
// teacher is treated as a constant). Computed in the student's floating dtype; differentiable with
// respect to student_logits.
torch::Tensor kd_divergence(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                            const KdOptions& options);

}  // namespace r1kit::distill
