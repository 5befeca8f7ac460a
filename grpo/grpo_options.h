// Every option of the GRPO trainer (grpo/trainer.h), read from the `grpo` stage of a recipe.
// The default is on the declaration line; read_grpo_options rejects unknown keys.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "model/lora.h"
#include "rewards/reward_set.h"

namespace r1kit::grpo {

struct GrpoOptions {
  // --- schedule -----------------------------------------------------------------------------
  int64_t steps = 100;               // training steps (one generation batch each)
  int64_t prompts_per_step = 16;     // B: prompts sampled per step
  int64_t group_size = 8;            // G: completions per prompt (>= 2)
  int64_t num_iterations = 1;        // mu: optimiser passes over each generation batch (TRL num_iterations)
  int64_t micro_batch_size = 32;     // completions per forward/backward (gradient accumulation unit)
  uint64_t seed = 1;                 // data order and sampling seeds derive from it

  // --- optimiser (AdamW, linear warm-up then cosine or constant) ----------------------------
  double lr = 1e-6;                  // peak learning rate
  double weight_decay = 0.0;         // AdamW decoupled weight decay
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.99;
  double adam_eps = 1e-8;
  int64_t warmup_steps = 0;          // linear warm-up from 0 over these optimiser steps
  std::string lr_schedule = "constant";  // "constant" | "cosine" (to min_lr_ratio * lr at the last step)
  double min_lr_ratio = 0.0;         // cosine floor as a fraction of lr
  double max_grad_norm = 1.0;        // clip the global grad norm; 0 = off

  // --- objective (grpo/loss.h, grpo/advantages.h) -------------------------------------------
  std::string policy_loss = "ppo";   // "ppo" (token clip) | "gspo" (sequence ratio/clip) | "cispo" (clipped IS weight)
  double beta = 0.0;                 // KL coefficient; 0 loads no reference model
  double epsilon = 0.2;              // eps_low: ratio floor 1 - epsilon (cispo: 1 = no floor)
  double epsilon_high = 0.2;         // ratio ceiling 1 + epsilon_high (DAPO clip-higher: 0.28)
  double dual_clip = 0.0;            // c > 1: cap A < 0 token losses at c*|A| (veRL); 0 = off
  std::string scale_rewards = "group";    // "group" | "batch" | "none" (Dr. GRPO)
  double advantage_eps = 1e-4;       // added to the std
  std::string loss_aggregation = "grpo";  // "grpo" | "token_mean" | "dr_grpo" | "seq_mean_nonempty"

  // --- asynchronous rollout and off-policy correction (grpo/async_rollout.h, grpo/off_policy.h) --
  bool async_rollout = false;        // generate later steps' batches while the current step trains
  int64_t max_staleness = 1;         // with async_rollout: batches at most this many policy versions old
  std::string off_policy_correction = "none";  // "none" | "tis" (truncated IS) | "mis" (masked IS)
  double is_cap = 2.0;               // cap C on the sampler->trainer ratio for tis / mis

  // --- DAPO --------------------------------------------------------------------------------
  bool dynamic_sampling = false;     // drop groups whose rewards all agree, sample more prompts
  int64_t max_sampling_rounds = 3;   // extra generation rounds per step to refill the batch
  bool mask_truncated = false;       // completions cut by max_completion_length get no loss

  // --- generation (rollout pool) ------------------------------------------------------------
  int64_t max_completion_length = 256;    // max new tokens (L for dr_grpo)
  double temperature = 1.0;               // sampling and log-prob temperature
  double top_p = 1.0;
  int64_t top_k = 0;
  std::vector<std::string> stop_strings;  // extra stop strings (EOS always stops)
  int num_workers = 1;                    // rollout pool replicas
  int64_t max_batch = 64;                 // engine slots per worker
  int64_t token_budget = 65536;           // KV-cache tokens per worker
  int64_t logprob_chunk_size = 512;       // completion positions per lm_head/log-softmax chunk

  // --- data and rewards ---------------------------------------------------------------------
  std::string prompt_field = "prompt";    // record field holding the rendered prompt text
  rewards::RewardSet rewards;             // `rewards:` list (rewards/reward_set.h); required
  std::string accuracy_reward = "accuracy";  // reward label logged as reward/accuracy ("" = none)
  std::string format_reward = "format";      // reward label whose share of samples > 0 is format_rate
  int reward_threads = 0;                    // threads scoring a group's samples (0 = the cores generation leaves free, >= 1)
  // A sample whose reward errored or timed out is masked out of the loss (never scored 0); a group
  // with fewer valid samples than this is dropped (grpo/reward_mask.h). >= 2.
  int64_t min_valid_samples = 2;

  // --- logging and checkpoints --------------------------------------------------------------
  int64_t log_samples_every = 10;    // write completions to samples.jsonl every N steps (0 = never)
  int64_t samples_per_log = 4;       // completions written each time
  int64_t save_every = 50;           // checkpoint every N steps (and at the end); 0 = only at the end
  int64_t keep_checkpoints = 2;      // newest K checkpoints kept
  bool tensorboard = true;           // also write metrics (and logged samples as text) to tensorboard/

  // --- LoRA (model/lora.h) ------------------------------------------------------------------
  LoraOptions lora;                  // `lora: {r, alpha, dropout, target_modules, rollout}`; r = 0: full fine-tuning
};

// Reads a `grpo` stage node (all keys above plus `rewards`) and calls node.finish(): an unknown
// key or a bad value is an Error naming the file and key path.
GrpoOptions read_grpo_options(ConfigNode& node);

// Range and consistency checks (also run by read_grpo_options and run_grpo).
void validate(const GrpoOptions& options, const std::string& where = "grpo");

}  // namespace r1kit::grpo
