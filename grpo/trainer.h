// GRPO training entry point: prompts -> rollout pool (G samples each) -> rewards -> advantages ->
// clipped policy-gradient updates -> new weights to the pool, with metrics, sample logs and
// resumable checkpoints. The steps are spelled out in grpo/trainer.cc.
//
// Run directory:
//   metrics.jsonl                 one JSON object per step ("step", "reward/mean", ...; docs/grpo.md)
//   samples.jsonl                 some completions every log_samples_every steps
//   checkpoints/step-N/           model/ (HF checkpoint + tokenizer files), optimizer.pt,
//                                 trainer_state.json (written last; the directory is renamed into place)
//   model/                        the final policy (HF checkpoint), written when the run completes
//   adapter/                      with LoRA (options.lora): the trained adapter in PEFT format (model/
//                                 then holds the merged policy; checkpoints hold adapter/, not model/)
//   tensorboard/                  the metrics as TensorBoard scalars, logged samples as text
//
// Resume: run_grpo on a run directory that has checkpoints continues from the newest one; metrics
// and samples lines of later steps (from the interrupted run) are dropped first, so the logs have
// every step exactly once. All randomness is a function of (seed, step, data position), so the
// resumed run takes the same steps the uninterrupted run would have.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <string>

#include "core/json.h"
#include "grpo/grpo_options.h"
#include "grpo/prompt_source.h"
#include "model/autocast.h"
#include "model/tokenizer_prompt.h"
#include "model/transformer.h"

namespace r1kit::grpo {

struct GrpoInputs {
  std::string model_dir;                 // initial policy (and reference): HF checkpoint with tokenizer.json
  PromptSource prompts;                  // training records (grpo/prompt_source.h)
  torch::Device device = torch::kCPU;    // training device (the pool's replicas use it too)
  torch::Dtype dtype = torch::kFloat32;  // parameter dtype of policy and reference
  PromptFormat prompt_format;            // BOS / chat template for the prompt texts (model/tokenizer_prompt.h)
  ComputeOptions compute;                // autocast, activation checkpointing (model/autocast.h)
  // Return after this many steps of this call without writing the final model (0: run to the
  // end). Simulates a preemption in tests; a later call resumes from the last checkpoint.
  int64_t stop_after_steps = 0;
  std::function<void(const json& step_metrics)> on_step;  // optional, after each step's metrics
  // Optional task statistics of the step's trained samples (prompt record, completion text
  // pairwise); the returned fields are merged into the step's metrics record.
  std::function<json(const std::vector<json>& records, const std::vector<std::string>& completions)> sample_metrics;
  // Optional held-out evaluation of the policy every eval_every steps and after the last one; its
  // fields (e.g. "eval/accuracy") are merged into that step's metrics record.
  std::function<json(Transformer& policy)> evaluate;
  int64_t eval_every = 0;
};

struct GrpoResult {
  bool finished = false;     // reached options.steps (else stopped by stop_after_steps)
  int64_t step = 0;          // last completed step
  int64_t resumed_from = 0;  // checkpoint step this call started from (0: fresh)
  std::string model_dir;     // RUN_DIR/model when finished, else the newest checkpoint's model ("" if none)
  json last_metrics;         // the last step's metrics record (null if no step ran)
};

// Trains (or resumes) in run_dir. Errors (bad options, unreadable model, a failed step) throw
// r1kit::Error; checkpoints already written stay valid.
GrpoResult run_grpo(const GrpoOptions& options, const std::string& run_dir, const GrpoInputs& inputs);

// Step of the newest complete checkpoint under run_dir/checkpoints (0: none).
int64_t latest_checkpoint_step(const std::string& run_dir);

// Learning rate of optimiser step `step` (0-based) out of `total`: HF-style linear warm-up
// (lr * step / warmup_steps) then constant or cosine down to min_lr_ratio * lr.
double scheduled_lr(const GrpoOptions& options, int64_t step, int64_t total);

}  // namespace r1kit::grpo
