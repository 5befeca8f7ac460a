// The one generate-and-score driver behind every offline data job (distillation data, rejection
// sampling, evaluation): prompts -> rollout pool (n samples each) -> reward set, chunk by chunk.
//
//   for each chunk of `chunk_prompts` prompts:
//     1. the pool generates samples_per_prompt completions per prompt (continuous batching)
//     2. each group is scored by the reward set as soon as it finishes, while the pool generates
//        the rest (rewards spread over a thread pool: code rewards run sandboxes)
//     3. on_chunk(groups of the chunk, in prompt order): the caller filters and writes them, e.g.
//        as one JsonlShards shard, so a kill -9 loses at most the chunk in flight
//
// Determinism and resume: a prompt's samples are drawn with prompt_seed(sampling.seed, id), a
// function of the prompt's id only, so a resumed job (which skips done ids) or a job over a
// re-ordered / re-sharded prompt file draws exactly the samples an uninterrupted job would have.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/json.h"
#include "rewards/reward_set.h"
#include "rollout/pool.h"

namespace r1kit {
class Progress;
}

namespace r1kit::datagen {

struct PromptItem {
  std::string id;                  // stable key: names the prompt in outputs, seeds its samples
  std::string text;                // the rendered prompt (the rewards' `prompt`)
  std::vector<int64_t> ids;        // its tokens (non-empty)
  json record = json::object();    // dataset fields for the rewards ("answer", "tests", ...)
};

struct ScoredGroup {
  const PromptItem* prompt = nullptr;         // points into the caller's prompt list
  Group group;                                // samples_per_prompt samples, by sample_index
  std::vector<rewards::SampleScore> scores;   // one per sample; empty when no reward set is given
};

struct DriverOptions {
  int64_t samples_per_prompt = 1;  // n (G)
  SamplingOptions sampling;        // sampling.seed is the base seed of prompt_seed()
  int64_t chunk_prompts = 64;      // prompts per on_chunk (bounds memory and the work a kill can lose)
  int reward_threads = 2;          // threads scoring groups while the pool generates
};

// The seed of a prompt's samples: a bijective mix of (base seed, FNV-1a of the id), >= 0.
int64_t prompt_seed(uint64_t base_seed, const std::string& id);

struct DriverStats {
  int64_t prompts = 0, samples = 0, completion_tokens = 0, reward_errors = 0;
  double generate_s = 0, score_s = 0;  // wall time in generation (minus scoring) and in scoring
};

// Runs the job over `prompts` (ids must be unique and non-empty). rewards == nullptr: no scoring.
// progress (optional) advances by one per finished group and counts "tok" (completion tokens).
// Errors in the pool or in on_chunk propagate; chunks already handed to on_chunk stay handed.
DriverStats generate_and_score(RolloutPool& pool, const rewards::RewardSet* rewards,
                               const std::vector<PromptItem>& prompts, const DriverOptions& options,
                               const std::function<void(std::vector<ScoredGroup>&&)>& on_chunk,
                               Progress* progress = nullptr);

}  // namespace r1kit::datagen
