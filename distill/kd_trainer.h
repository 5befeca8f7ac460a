// Logit knowledge distillation on fixed sequences (teacher traces, SFT data): the student trains
// through sft::run_sft (same optimiser, schedule, accumulation, checkpoints and resume) with the
// loss replaced by a KD divergence (kd_loss.h) between the student's and the teacher's next-token
// distributions at every target position, the teacher's logits computed on the fly (no gradients),
// optionally plus cross-entropy on the targets:
//
//   loss = kd_weight * sum_t D(p_S(.|x<t), p_T(.|x<t)) + ce_weight * sum_t -log p_S(x_t|x<t),  / target tokens
//
// Both models must share a tokenizer (check_same_tokenizer); when their embedding matrices have
// different padded sizes, the logits are compared over the common rows (at least the tokenizer's
// vocabulary).
#pragma once
#include <cstdint>
#include <string>

#include "distill/kd_loss.h"
#include "model/transformer.h"
#include "sft/sft_trainer.h"

namespace r1kit::distill {

struct KdTrainOptions {
  KdOptions kd;               // divergence, beta, temperature, top_k
  double kd_weight = 1.0;     // weight of the divergence
  double ce_weight = 0.0;     // weight of the cross-entropy on the targets (0 = pure distillation)
  int64_t loss_chunk = 1024;  // target positions per logits chunk (bounds the 2 x N x V memory)
};

// Throws Error (naming `where`) when the two model directories do not share a tokenizer: a
// missing tokenizer.json, different vocabulary sizes, or the first id whose token differs. Returns
// the tokenizer's vocabulary size.
int64_t check_same_tokenizer(const std::string& student_dir, const std::string& teacher_dir,
                             const std::string& where = "kd");

// Loads a teacher model for distillation (eval mode, no gradients). A missing directory or
// config.json is an Error naming it.
Transformer load_teacher(const std::string& dir, torch::Device device, torch::Dtype dtype);

// One micro-batch of KD: accumulates gradients of loss / normalizer into the student and returns
// the summed loss (the sft::SftLossFn contract). `vocab` > 0 limits the compared logits to the
// first `vocab` rows (0 = the smaller of the two models' sizes).
double kd_loss_backward(Transformer& student, Transformer& teacher, const sft::SftBatch& batch, double normalizer,
                        const KdTrainOptions& options, int64_t vocab = 0);

// The loss for run_sft.
sft::SftLossFn make_kd_loss(Transformer teacher, KdTrainOptions options, int64_t vocab = 0);

}  // namespace r1kit::distill
