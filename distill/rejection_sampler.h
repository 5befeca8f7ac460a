// Rejection sampling and distillation-data generation, on the one generate-and-score driver
// (datagen/generate_and_score.h): prompts -> N samples each from the policy or teacher -> the
// reward set -> filters (trace_filter.h) -> up to k per prompt by preference -> exact and
// near-duplicate removal (dedup.h) -> chat records with provenance.
//
//   OUT/job.json                             the job's settings; resuming with other settings is refused
//   OUT/shards/shard-NNNNNN.jsonl + .meta    kept records, one shard per chunk of prompts (JsonlShards:
//                                            atomic, so kill -9 loses at most the chunk in flight)
//   OUT/data.jsonl                           all kept records in prompt order, then the mixed-in
//                                            non-reasoning records; written when every prompt is done
//   OUT/stats.json                           counts per rejection reason, dedup, selection, mix, speed
//
// A record: {"messages": [...the prompt's turns..., {"role": "assistant", "content": completion}],
//            "prompt_id", "sample_index", "policy", "seed", "reward", "rewards": {label: score},
//            "completion_tokens", "finish_reason", "source": "generated"}
// Resume is exact: samples are seeded by prompt id, chunks are handed over in prompt order, and the
// dataset-wide dedup index is rebuilt from the shards, so an interrupted-and-resumed job writes the
// records an uninterrupted one would have.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/json.h"
#include "datagen/generate_and_score.h"
#include "distill/dedup.h"
#include "distill/trace_filter.h"
#include "rewards/reward_set.h"

namespace r1kit::distill {

struct DataJobOptions {
  datagen::DriverOptions driver;        // samples per prompt (N), sampling, chunk size, reward threads
  FilterOptions filters;
  rewards::RewardSet extra_rewards;     // recorded in every record; their weighted total is "reward"
  int64_t keep_per_prompt = 1;          // k: kept samples per prompt (0 = every accepted sample)
  std::string prefer = "shortest";      // which accepted samples to keep first: shortest | longest |
                                        // highest_reward | first | random
  DedupOptions dedup;                   // exact duplicates are removed dataset-wide
  std::string near_scope = "prompt";    // near duplicates among a prompt's samples ("prompt") or
                                        // across the whole dataset ("dataset")
  std::string policy;                   // checkpoint recorded as each record's "policy"
  double mix_ratio = 0;                 // non-reasoning records per kept record (0 = none)
  // n non-reasoning records (as {"messages": ...}); called once when the job completes.
  std::function<std::vector<json>(int64_t n)> mix_records;
  json settings = json::object();       // what identifies the job (job.json); compared on resume
  bool progress = true;                 // progress bar on stderr (auto: only on a terminal)
};

// Reads the job keys shared by `r1kit distill` config files and the rejection_sampling stage:
//   samples_per_prompt, keep_per_prompt, prefer, chunk_prompts, temperature, top_p, top_k,
//   max_new_tokens, seed, filters: {...}, rewards: [...], dedup: {exact, near, near_scope,
//   threshold, unit, shingle, num_perm, bands}
// into `o` (keys that are absent keep o's values; finish() is the caller's). Errors name file and key.
void read_data_job_options(ConfigNode& node, DataJobOptions& o);

// Throws Error naming `where` for a bad preference, scope, k or ratio.
void validate_data_job(const DataJobOptions& o, const std::string& where);

struct DataJobResult {
  bool complete = false;   // every prompt done (data.jsonl and stats.json written)
  int64_t prompts_done_before = 0;  // prompts found done in the shards when this call started
  json stats;              // what stats.json holds
  std::string data_path;   // OUT/data.jsonl
};

// Runs or resumes the job over `prompts` into `out_dir`. messages_of(prompt) is the conversation
// the completion answers (the record's prompt turns). Errors: a job.json with other settings, a
// damaged shard (naming the file), anything the pool or rewards throw.
DataJobResult run_data_job(RolloutPool& pool, const std::vector<datagen::PromptItem>& prompts,
                           const std::function<json(const datagen::PromptItem&)>& messages_of,
                           const DataJobOptions& options, const std::string& out_dir);

// The core of run_data_job for one prompt's scored group (exposed for tests): filters, keeps up to
// k by preference skipping duplicates (near duplicates among the prompt's samples or, with
// near_scope dataset, in `dataset_index`; exact duplicates in `dataset_index`), adds the kept
// texts to `dataset_index`. `counts` has the layout of stats.json's counters.
struct GroupSelection {
  std::vector<json> records;
  json counts;
  std::vector<json> examples;  // a few rejected samples per reason, for inspection
};
GroupSelection select_from_group(const datagen::ScoredGroup& group, const json& prompt_messages,
                                 const DataJobOptions& options, const rewards::RewardSet& set, DedupIndex& dataset_index);
// Zeroed counters (prompts, samples, accepted, kept, rejected{reason}, failed_checks{reason},
// dropped{exact_duplicate, near_duplicate, over_k}, ...).
json empty_counts();

// A record in chat form: "messages" kept; {"prompt", "completion"} -> a user and an assistant turn.
// Other fields are kept. Error naming `where` otherwise.
json to_messages_record(const json& record, const std::string& where);

// The text duplicates are judged on: every message's content, joined by newlines.
std::string dedup_text(const json& messages);

}  // namespace r1kit::distill
