#include "recipes/stages.h"

#include <torch/torch.h>

#include "model/checkpoint.h"
#include "model/device.h"
#include "model/threads.h"

namespace r1kit::recipes {

// One entry per stage kind.
const std::vector<StageKind>& stage_kinds() {
  static const std::vector<StageKind> kinds = {
      {"sft", "supervised fine-tuning on the task's SFT records or a dataset (masked cross-entropy)", parse_sft_stage},
      {"grpo", "GRPO reinforcement learning with the configured rewards", parse_grpo_stage},
      {"eval", "generation on the held-out records, scored by the accuracy reward", parse_eval_stage},
      {"rejection_sampling", "N samples per prompt, filtered, up to k kept, deduplicated, mixed -> data.jsonl",
       parse_rejection_sampling_stage},
      {"init_model", "a fresh tiny model or a checkpoint to start later stages from (e.g. a student)",
       parse_init_model_stage},
      {"kd", "logit distillation from a teacher on fixed sequences (forward/reverse KL, JSD)", parse_kd_stage},
      {"on_policy_distill", "student samples, teacher scores every token, per-token reverse KL",
       parse_on_policy_distill_stage},
  };
  return kinds;
}

// Checked when a stage runs (a CUDA recipe still validates on a machine without a GPU).
torch::Device recipe_device(const RecipeSettings& recipe) {
  return parse_device(recipe.device, recipe.file + ": key 'device'");
}

torch::Dtype recipe_dtype(const RecipeSettings& recipe) {
  return recipe.dtype == "auto" ? default_dtype(recipe_device(recipe)) : parse_dtype(recipe.dtype);
}

ComputeOptions recipe_compute(const RecipeSettings& recipe) {
  ComputeOptions c;
  c.autocast = recipe.autocast;
  c.activation_checkpointing = recipe.activation_checkpointing;
  return c;
}

void apply_recipe_threads(const RecipeSettings& recipe) {
  if (recipe.threads > 0) {
    at::set_num_threads(recipe.threads);
  } else {
    set_default_threads();
  }
}

}  // namespace r1kit::recipes
