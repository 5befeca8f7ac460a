// GRPO checkpoints: RUN_DIR/checkpoints/step-N/{model/, optimizer.pt, trainer_state.json}.
// A checkpoint is built in step-N.tmp and renamed into place, with trainer_state.json written
// last, so a kill -9 at any moment leaves either a complete checkpoint or an ignored *.tmp dir.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "model/checkpoint.h"
#include "model/lora.h"
#include "model/master_weights.h"

namespace r1kit::grpo {

// What, besides weights and optimizer moments, a resumed run needs to take the same next step.
struct TrainerState {
  int64_t step = 0;             // last completed training step
  int64_t optimizer_steps = 0;  // AdamW steps taken (num_iterations per training step)
  int64_t data_position = 0;    // next record of the prompt stream
  uint64_t seed = 0;            // GrpoOptions::seed the run started with (checked on resume)
  json to_json() const;
  static TrainerState from_json(const json& j, const std::string& where);
};

std::string checkpoint_dir(const std::string& run_dir, int64_t step);

// Writes the checkpoint of `state.step` and keeps the newest `keep` checkpoints. With a LoRA
// `adapter` the checkpoint holds adapter/ (PEFT format) instead of model/.
void save_checkpoint(const std::string& run_dir, const TrainerState& state, Transformer& policy,
                     const ModelConfig& cfg, const MasterWeights& optimizer, const std::string& tokenizer_dir,
                     int64_t keep, const LoraAdapter* adapter = nullptr);

// Steps of the complete checkpoints (those with trainer_state.json), ascending.
std::vector<int64_t> checkpoint_steps(const std::string& run_dir);

// Reads trainer_state.json of checkpoint `step` and loads optimizer.pt (AdamW state and, for a bf16
// policy, the fp32 master weights) into `optimizer`.
TrainerState load_checkpoint_state(const std::string& run_dir, int64_t step, MasterWeights& optimizer,
                                   torch::Device device);

// Rewrites a JSONL log (atomically) without the records whose "step" is > max_step; a torn last
// line (kill -9 mid-write) is dropped too. Missing file: nothing to do.
void truncate_jsonl_after_step(const std::string& path, int64_t max_step);

}  // namespace r1kit::grpo
