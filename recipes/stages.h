// The stage kinds' parsers (one source file each) and helpers they share.
#pragma once
#include <torch/types.h>

#include <memory>

#include "core/config.h"
#include "model/autocast.h"
#include "recipes/runner.h"
#include "distill/kd_trainer.h"
#include "sft/sft_trainer.h"

namespace r1kit {
class Tokenizer;
}

namespace r1kit::recipes {

std::unique_ptr<Stage> parse_sft_stage(ConfigNode& node, const RecipeSettings& recipe);
std::unique_ptr<Stage> parse_grpo_stage(ConfigNode& node, const RecipeSettings& recipe);
std::unique_ptr<Stage> parse_eval_stage(ConfigNode& node, const RecipeSettings& recipe);
std::unique_ptr<Stage> parse_rejection_sampling_stage(ConfigNode& node, const RecipeSettings& recipe);
std::unique_ptr<Stage> parse_init_model_stage(ConfigNode& node, const RecipeSettings& recipe);
std::unique_ptr<Stage> parse_kd_stage(ConfigNode& node, const RecipeSettings& recipe);
std::unique_ptr<Stage> parse_on_policy_distill_stage(ConfigNode& node, const RecipeSettings& recipe);

// What the sft, kd and on_policy_distill stages share (sft_stage.cc): optimiser and schedule,
// record format, and the data (`dataset`: an earlier stage's data.jsonl or a path; "" = the task's
// SFT records).
struct SftTrainOptions {
  sft::SftOptions sft;
  sft::SftFormatOptions format;
  std::string dataset;
};
// Reads the keys of SftTrainOptions (not finish()); errors name the file and key.
void read_sft_train_options(ConfigNode& node, SftTrainOptions& t);
// Reads the KD keys shared by the kd and on_policy_distill stages (kd_stage.cc): loss (default
// `default_loss`), beta, temperature, top_k, kd_weight, ce_weight.
distill::KdTrainOptions read_kd_train_options(ConfigNode& node, const std::string& default_loss);

// The teacher of a kd or on_policy_distill stage (kd_stage.cc): `ref` resolved (an earlier stage or a
// path), checked to share the student's (env.input_model's) tokenizer, and loaded frozen.
struct StageTeacher {
  std::string dir;
  int64_t vocab = 0;
  Transformer model{nullptr};
};
StageTeacher load_stage_teacher(const StageEnv& env, const std::string& ref);

// Builds the data source from the model being trained (on-policy distillation samples it).
using SftSourceFactory = std::function<sft::SftBatchSource(Transformer& model, const Tokenizer& tok)>;
// Loads the input model, trains it with run_sft (loss = null: cross-entropy; or e.g. KD) on the
// configured data (or `make_source`'s), saves RUN_DIR/<name>/model.
StageResult run_sft_training(const StageEnv& env, const SftTrainOptions& t, const sft::SftLossFn& loss,
                             const SftSourceFactory& make_source = nullptr);

// The recipe's device, and its dtype ("auto": bf16 on CUDA, f32 on CPU).
torch::Device recipe_device(const RecipeSettings& recipe);
torch::Dtype recipe_dtype(const RecipeSettings& recipe);
// The recipe's autocast / activation checkpointing for the models its stages load.
ComputeOptions recipe_compute(const RecipeSettings& recipe);
// Sets intra-op threads from the recipe (0: all cores or $R1_THREADS).
void apply_recipe_threads(const RecipeSettings& recipe);

}  // namespace r1kit::recipes
