// Offline scoring of a JSONL file of completions (the `r1kit reward` command).
//
// Input lines: {"prompt": "...", "completion": "...", <dataset fields>} where the dataset fields
// are either under "fields" (an object) or, when there is no "fields" key, every other top-level
// key except prompt, completion and earlier reward outputs (reward, rewards, reward_*).
// Output lines: the input record plus RewardSet::to_json's keys (reward, rewards,
// reward_components, reward_diagnostics, reward_errors). The output is written atomically.
#pragma once
#include <string>

#include "rewards/reward_set.h"

namespace r1kit {
class ThreadPool;
}

namespace r1kit::rewards {

// The reward input of one JSONL record; Error naming the bad key.
RewardInput reward_input_from_record(const json& record);

struct ScoreFileOptions {
  std::size_t batch_size = 64;  // samples scored together (plugins get one request per batch)
  int progress = -1;            // progress bar on stderr: -1 auto (a terminal), 0 off, 1 on
};

// Scores `in_path` into `out_path` and returns the statistics. Malformed lines are Errors naming
// the file and line; nothing is written then.
RewardStats score_jsonl_file(const RewardSet& set, const std::string& in_path, const std::string& out_path,
                             ThreadPool* pool, const ScoreFileOptions& options = {});

}  // namespace r1kit::rewards
