// Generation on held-out records through the rollout engine, scored by a registry reward (by
// default "accuracy", the math answer checker, which reads the tiny task's <answer>5</answer> like
// any other answer). Shared by the eval stage and the GRPO stage's periodic evaluation; the engine
// (and its KV cache) is kept between runs.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "model/tokenizer.h"
#include "model/tokenizer_prompt.h"
#include "recipes/task.h"
#include "rewards/reward.h"
#include "rollout/engine.h"

namespace r1kit::recipes {

struct HeldoutEvalOptions {
  int64_t limit = 0;            // held-out records (0 = all)
  int64_t samples = 1;          // completions per record
  SamplingOptions sampling;     // temperature, top_p, top_k, max_new_tokens
  int64_t max_batch = 256;      // sequences decoded together
  PromptFormat prompt_format;   // plain or chat prompts (model/tokenizer_prompt.h)
  std::string reward = "accuracy";
  json reward_options = json::object();
  std::string where;            // recipe file + stage, for reward option errors
  std::string reward_path;      // key path of reward_options
};

struct HeldoutResult {
  std::vector<json> records;                    // the evaluated records
  std::vector<Group> groups;                    // in record order
  std::vector<rewards::RewardOutput> scores;    // per sample, groups then samples
  std::vector<std::string> prompts;             // per sample
  // {"accuracy", "n", "records", "samples_per_record", "temperature", "mean_completion_tokens",
  //  "reward", "reward_errors"} + the task's sample_metrics (e.g. "borrow/correct").
  json summary;
};

class HeldoutEval {
 public:
  // Evaluates `model` (generation only; the caller keeps it current) on task.eval_records();
  // tokenizer_dir holds tokenizer_config.json for the prompt format.
  HeldoutEval(const Task& task, Transformer model, std::shared_ptr<const Tokenizer> tokenizer,
              const std::string& tokenizer_dir, HeldoutEvalOptions options);
  HeldoutResult run(uint64_t seed);

 private:
  const Task& task_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  HeldoutEvalOptions options_;
  std::vector<json> records_;
  std::vector<PromptRequest> requests_;
  std::unique_ptr<rewards::Reward> reward_;
  std::unique_ptr<GenerationEngine> engine_;
};

}  // namespace r1kit::recipes
