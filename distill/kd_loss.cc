#include "distill/kd_loss.h"

#include <torch/torch.h>

#include <cmath>

#include "core/check.h"
#include "core/config.h"

namespace r1kit::distill {
namespace {

// Rows of KL(p || q) from log-probabilities (p = exp(log_p)).
torch::Tensor kl_rows(const torch::Tensor& log_p, const torch::Tensor& log_q) {
  return (log_p.exp() * (log_p - log_q)).sum(-1);
}

}  // namespace

void validate_kd_options(const KdOptions& o, const std::string& where) {
  R1_CHECK(o.loss == "forward_kl" || o.loss == "reverse_kl" || o.loss == "jsd", where, ": unknown KD loss '", o.loss,
           "' (forward_kl, reverse_kl, jsd)");
  R1_CHECK(o.beta >= 0 && o.beta <= 1, where, ": beta must be in [0, 1], got ", o.beta);
  R1_CHECK(o.temperature > 0 && std::isfinite(o.temperature), where, ": temperature must be positive, got ",
           o.temperature);
  R1_CHECK(o.top_k >= 0, where, ": top_k must be >= 0, got ", o.top_k);
}

KdOptions read_kd_options(ConfigNode& node, const std::string& default_loss) {
  KdOptions o;
  o.loss = default_loss;
  node.read_enum("loss", o.loss, {"forward_kl", "reverse_kl", "jsd"});
  node.read("beta", o.beta);
  node.read("temperature", o.temperature);
  node.read("top_k", o.top_k);
  if (!(o.beta >= 0 && o.beta <= 1)) node.fail("beta", "must be in [0, 1]");
  if (!(o.temperature > 0)) node.fail("temperature", "must be positive");
  if (o.top_k < 0) node.fail("top_k", "must be >= 0");
  return o;
}

torch::Tensor kd_divergence(const torch::Tensor& student_logits, const torch::Tensor& teacher_logits,
                            const KdOptions& o) {
  validate_kd_options(o);
  R1_CHECK(student_logits.dim() == 2 && student_logits.sizes() == teacher_logits.sizes(),
           "kd_divergence: student and teacher logits must both be [N, V], got ", student_logits.sizes(), " and ",
           teacher_logits.sizes(), " (do the models share a vocabulary?)");
  const auto dtype = student_logits.scalar_type();
  torch::Tensor zs = student_logits;
  torch::Tensor zt = teacher_logits.detach().to(student_logits.device(), dtype);
  if (o.top_k > 0 && o.top_k < zt.size(-1)) {
    const torch::Tensor idx = std::get<1>(zt.topk(o.top_k, -1));
    zs = zs.gather(-1, idx);
    zt = zt.gather(-1, idx);
  }
  const torch::Tensor ls = torch::log_softmax(zs / o.temperature, -1);
  const torch::Tensor lt = torch::log_softmax(zt / o.temperature, -1);
  if (o.loss == "forward_kl" || (o.loss == "jsd" && o.beta == 0)) return kl_rows(lt, ls);
  if (o.loss == "reverse_kl" || (o.loss == "jsd" && o.beta == 1)) return kl_rows(ls, lt);
  // log M = logsumexp(log p_T + log beta, log p_S + log(1 - beta)): stable where both are tiny.
  const torch::Tensor lm = torch::logsumexp(torch::stack({lt + std::log(o.beta), ls + std::log1p(-o.beta)}), 0);
  return o.beta * kl_rows(lt, lm) + (1 - o.beta) * kl_rows(ls, lm);
}

}  // namespace r1kit::distill
