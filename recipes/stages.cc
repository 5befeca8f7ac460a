#include "recipes/stages.h"

#include <torch/torch.h>

#include "model/checkpoint.h"
#include "model/device.h"
#include "model/threads.h"

namespace r1kit::recipes {

// One entry per stage kind. Later kinds (rejection sampling, distillation) are added here.
const std::vector<StageKind>& stage_kinds() {
  static const std::vector<StageKind> kinds = {
      {"sft", "supervised fine-tuning on the task's SFT records (masked cross-entropy)", parse_sft_stage},
      {"grpo", "GRPO reinforcement learning with the configured rewards", parse_grpo_stage},
      {"eval", "generation on the held-out records, scored by the accuracy reward", parse_eval_stage},
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
