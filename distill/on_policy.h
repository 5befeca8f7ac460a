// On-policy distillation: the student samples completions of the training prompts through the
// rollout pool, the teacher scores every token of them, and the per-token reverse KL
// KL(p_S || p_T) at each completion position is the training signal (GKD with student data only;
// the "on-policy distillation" recipe of Qwen3 / Thinking Machines). It runs on sft::run_sft: this
// file provides the batch source (fresh student samples every step) and the loss is kd_trainer's
// with `kd.loss` (default reverse_kl).
//
// Step s: the pool is loaded with the student's current weights (version s + 1), the step's P
// prompts are sampled G times each with seeds derived from (seed, s, prompt), and each sample
// becomes an example prompt ++ completion whose targets are the completion tokens (the stop token
// included, so the student also learns where to stop). A resumed run restores the student's
// weights first, so it samples exactly what the interrupted run would have.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "datagen/generate_and_score.h"
#include "rollout/pool.h"
#include "sft/sft_trainer.h"

namespace r1kit::distill {

struct OnPolicyOptions {
  int64_t prompts_per_step = 16;   // P
  int64_t samples_per_prompt = 4;  // G; run_sft's batch_size must be P x G
  SamplingOptions sampling;        // the student's sampling (temperature 1 = its own distribution)
};

// The prompts of step s (a pure function of s).
using StepPrompts = std::function<std::vector<datagen::PromptItem>(int64_t step, int64_t n)>;

// Called after each step's generation with its groups (for logging: lengths, rewards).
using OnSamples = std::function<void(int64_t step, const std::vector<Group>& groups)>;

sft::SftBatchSource on_policy_source(Transformer student, RolloutPool& pool, StepPrompts prompts,
                                     OnPolicyOptions options, OnSamples on_samples = nullptr);

}  // namespace r1kit::distill
