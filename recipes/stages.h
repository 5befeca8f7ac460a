// The stage kinds' parsers (one source file each) and helpers they share.
#pragma once
#include <torch/types.h>

#include <memory>

#include "core/config.h"
#include "model/autocast.h"
#include "recipes/runner.h"

namespace r1kit::recipes {

std::unique_ptr<Stage> parse_sft_stage(ConfigNode& node, const RecipeSettings& recipe);
std::unique_ptr<Stage> parse_grpo_stage(ConfigNode& node, const RecipeSettings& recipe);
std::unique_ptr<Stage> parse_eval_stage(ConfigNode& node, const RecipeSettings& recipe);

// The recipe's device, and its dtype ("auto": bf16 on CUDA, f32 on CPU).
torch::Device recipe_device(const RecipeSettings& recipe);
torch::Dtype recipe_dtype(const RecipeSettings& recipe);
// The recipe's autocast / activation checkpointing for the models its stages load.
ComputeOptions recipe_compute(const RecipeSettings& recipe);
// Sets intra-op threads from the recipe (0: all cores or $R1_THREADS).
void apply_recipe_threads(const RecipeSettings& recipe);

}  // namespace r1kit::recipes
