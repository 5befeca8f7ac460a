#include "grpo/grpo_options.h"

#include "grpo/advantages.h"
#include "grpo/loss.h"

namespace r1kit::grpo {

GrpoOptions read_grpo_options(ConfigNode& node) {
  GrpoOptions o;
  node.read("steps", o.steps);
  node.read("prompts_per_step", o.prompts_per_step);
  node.read("group_size", o.group_size);
  node.read("num_iterations", o.num_iterations);
  node.read("micro_batch_size", o.micro_batch_size);
  node.read("seed", o.seed);
  node.read("lr", o.lr);
  node.read("weight_decay", o.weight_decay);
  node.read("adam_beta1", o.adam_beta1);
  node.read("adam_beta2", o.adam_beta2);
  node.read("adam_eps", o.adam_eps);
  node.read("warmup_steps", o.warmup_steps);
  node.read_enum("lr_schedule", o.lr_schedule, {"constant", "cosine"});
  node.read("min_lr_ratio", o.min_lr_ratio);
  node.read("max_grad_norm", o.max_grad_norm);
  node.read_enum("policy_loss", o.policy_loss, {"ppo", "gspo", "cispo"});
  node.read("beta", o.beta);
  node.read("epsilon", o.epsilon);
  node.read("epsilon_high", o.epsilon_high);
  node.read("dual_clip", o.dual_clip);
  node.read_enum("scale_rewards", o.scale_rewards, {"group", "batch", "none"});
  node.read("advantage_eps", o.advantage_eps);
  node.read_enum("loss_aggregation", o.loss_aggregation, {"grpo", "token_mean", "dr_grpo", "seq_mean_nonempty"});
  node.read("async_rollout", o.async_rollout);
  node.read("max_staleness", o.max_staleness);
  node.read_enum("off_policy_correction", o.off_policy_correction, {"none", "tis", "mis"});
  node.read("is_cap", o.is_cap);
  node.read("dynamic_sampling", o.dynamic_sampling);
  node.read("max_sampling_rounds", o.max_sampling_rounds);
  node.read("mask_truncated", o.mask_truncated);
  node.read("max_completion_length", o.max_completion_length);
  node.read("temperature", o.temperature);
  node.read("top_p", o.top_p);
  node.read("top_k", o.top_k);
  node.read("stop_strings", o.stop_strings);
  node.read("num_workers", o.num_workers);
  node.read("max_batch", o.max_batch);
  node.read("token_budget", o.token_budget);
  node.read("logprob_chunk_size", o.logprob_chunk_size);
  node.read("prompt_field", o.prompt_field);
  R1_CHECK(node.has("rewards"), node.where(), ": missing required key '", node.key_path("rewards"), "'");
  o.rewards = rewards::RewardSet::from_config(node);
  node.read("accuracy_reward", o.accuracy_reward);
  node.read("format_reward", o.format_reward);
  node.read("reward_threads", o.reward_threads);
  node.read("min_valid_samples", o.min_valid_samples);
  node.read("log_samples_every", o.log_samples_every);
  node.read("samples_per_log", o.samples_per_log);
  node.read("save_every", o.save_every);
  node.read("keep_checkpoints", o.keep_checkpoints);
  node.read("tensorboard", o.tensorboard);
  if (node.has("lora")) {
    ConfigNode lora = node.child("lora");
    o.lora = read_lora_options(lora);
    lora.finish();
  }
  node.finish();
  validate(o, node.where());
  return o;
}

void validate(const GrpoOptions& o, const std::string& where) {
  auto need = [&](bool ok, const char* key, const std::string& what) {
    R1_CHECK(ok, where, ": ", key, " ", what);
  };
  need(o.steps >= 1, "steps", "must be >= 1");
  need(o.prompts_per_step >= 1, "prompts_per_step", "must be >= 1");
  need(o.group_size >= 2, "group_size", "must be >= 2 (advantages compare completions of one prompt)");
  need(o.num_iterations >= 1, "num_iterations", "must be >= 1");
  need(o.micro_batch_size >= 1, "micro_batch_size", "must be >= 1");
  need(o.lr > 0, "lr", "must be > 0");
  need(o.weight_decay >= 0, "weight_decay", "must be >= 0");
  need(o.adam_beta1 >= 0 && o.adam_beta1 < 1 && o.adam_beta2 >= 0 && o.adam_beta2 < 1, "adam_beta1/adam_beta2",
       "must be in [0, 1)");
  need(o.warmup_steps >= 0, "warmup_steps", "must be >= 0");
  need(o.min_lr_ratio >= 0 && o.min_lr_ratio <= 1, "min_lr_ratio", "must be in [0, 1]");
  need(o.max_grad_norm >= 0, "max_grad_norm", "must be >= 0");
  need(o.beta >= 0, "beta", "must be >= 0");
  const bool cispo = o.policy_loss == "cispo";
  need(o.epsilon >= 0 && (o.epsilon < 1 || (cispo && o.epsilon == 1)), "epsilon",
       cispo ? "must be in [0, 1] (1: no floor on the weight)" : "must be in [0, 1)");
  need(!cispo || o.dual_clip == 0, "dual_clip", "must be 0 with policy_loss cispo (the weight is clamped)");
  need(o.epsilon_high >= 0, "epsilon_high", "must be >= 0");
  need(o.dual_clip == 0 || o.dual_clip > 1, "dual_clip", "must be 0 (off) or > 1");
  need(o.advantage_eps >= 0, "advantage_eps", "must be >= 0");
  need(o.max_staleness >= 0, "max_staleness", "must be >= 0");
  need(o.is_cap >= 1, "is_cap", "must be >= 1");
  need(o.max_sampling_rounds >= 0, "max_sampling_rounds", "must be >= 0");
  need(o.max_completion_length >= 1, "max_completion_length", "must be >= 1");
  need(o.temperature > 0, "temperature", "must be > 0 (GRPO samples; greedy groups would all agree)");
  need(o.num_workers >= 1, "num_workers", "must be >= 1");
  need(o.reward_threads >= 0, "reward_threads", "must be >= 0");
  need(o.min_valid_samples >= 2 && o.min_valid_samples <= o.group_size, "min_valid_samples",
       "must be in [2, group_size]");
  need(o.logprob_chunk_size >= 1, "logprob_chunk_size", "must be >= 1");
  need(o.log_samples_every >= 0 && o.samples_per_log >= 0, "log_samples_every/samples_per_log", "must be >= 0");
  need(o.save_every >= 0, "save_every", "must be >= 0");
  need(o.keep_checkpoints >= 1, "keep_checkpoints", "must be >= 1");
  need(!o.rewards.empty(), "rewards", "must list at least one reward");
  parse_advantage_scale(o.scale_rewards, where + ": scale_rewards");
  parse_loss_aggregation(o.loss_aggregation, where + ": loss_aggregation");
  parse_policy_loss(o.policy_loss, where + ": policy_loss");
}

}  // namespace r1kit::grpo
