// Steps 1-3 of a GRPO step as one function: B prompts from the stream -> G completions each from
// the rollout pool -> rewards scored per group while the pool keeps generating, with DAPO dynamic
// sampling. The trainer calls it inline (synchronous) or from the AsyncRollout thread, which
// generates the next steps' batches while the current step trains (grpo/async_rollout.h).
// Under data parallelism it generates this rank's share only and runs no collective.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"
#include "core/thread_pool.h"
#include "grpo/data_parallel.h"
#include "grpo/grpo_options.h"
#include "grpo/prompt_source.h"
#include "grpo/reward_mask.h"
#include "model/tokenizer_prompt.h"
#include "rewards/reward_set.h"
#include "rollout/pool.h"

namespace r1kit::grpo {

// One prompt's group with its record and reward scores.
struct ScoredGroup {
  json record;
  std::string prompt_text;
  Group group;                               // samples carry the sampler's per-token log-probs
  std::vector<rewards::SampleScore> scores;  // one per sample
  GroupValidity validity;                    // samples whose rewards all succeeded
  bool constant = false;                     // all valid totals equal (no learning signal)
};

struct RolloutBatch {
  std::vector<ScoredGroup> kept;                    // the groups to train on (<= B)
  std::vector<double> all_totals;                   // every generated sample (dropped groups too)
  std::vector<std::vector<double>> all_by_reward;   // per reward function
  std::vector<int64_t> all_lengths;
  int64_t all_truncated = 0, dropped_groups = 0, rounds = 0, reward_errors = 0, generated_tokens = 0;
  int64_t masked_samples = 0, error_groups = 0;  // samples whose reward errored; groups dropped for it
  double generate_s = 0, reward_s = 0;
  int64_t data_position_end = 0;       // prompt stream position after this batch (saved in checkpoints)
  int64_t oldest_weight_version = -1;  // oldest policy version among the kept groups
};

struct RolloutContext {
  const GrpoOptions& options;
  const PromptSource& prompts;
  const PromptEncoder& encoder;
  RolloutPool& pool;
  const SamplingOptions& sampling;
  ThreadPool& reward_pool;
  const DataParallel& dp;
};

// The batch whose prompts start at stream position `position`. Request seeds follow the records'
// stream positions, so the samples do not depend on when or on which rank the batch is generated.
RolloutBatch generate_rollout_batch(const RolloutContext& context, int64_t position);

}  // namespace r1kit::grpo
