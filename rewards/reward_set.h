// A weighted set of rewards built from config, scoring batches:
//
//   rewards:
//     - {name: accuracy, weight: 1.0}
//     - {name: format, weight: 0.1, options: {think_prefilled: false}}
//     - {name: format, label: format_answer, weight: 0.1, options: {answer_tags: true}}
//
// Each sample gets total = sum(weight * score) over the rewards (an errored reward contributes
// weight * its error score; trainers mask such samples out instead, grpo/reward_mask.h), plus every
// reward's output. The rewards of a batch run in parallel (one thread each) and each reward
// spreads its samples over the ThreadPool.
//
// Time limit: every reward call has one (timeout_s per entry, default 600 s). Rewards that run
// code enforce their own, killable limits (the code reward's sandbox, plugin processes); this one
// is the backstop for the rest: when a batch is not scored in time its samples get error outputs
// ("timed out"), the run goes on, and the late computation is abandoned (it owns copies of what it
// reads, so it can finish or hang without touching the caller).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "rewards/reward.h"

namespace r1kit::rewards {

struct RewardEntry {
  std::string label;         // key in logs and outputs; default: the reward name as written
  std::string name;          // canonical registry name
  double weight = 1.0;       // multiplies the score in the total
  double error_score = 0.0;  // score when the reward throws instead of returning an output
  std::shared_ptr<const Reward> reward;
  double timeout_s = 600.0;  // wall-clock limit for one batch of this reward; 0 = none
};

struct SampleScore {
  double total = 0.0;                 // weighted sum
  std::vector<RewardOutput> outputs;  // one per entry, in config order
  int errors = 0;                     // outputs with error set
};

class RewardSet {
 public:
  RewardSet() = default;
  // Reads node["rewards"]: a list of reward names or {name, weight, label, error_score, options}.
  // Unknown names, keys or options are Errors naming the config file and key path.
  static RewardSet from_config(ConfigNode& node);

  void add(RewardEntry entry);
  const std::vector<RewardEntry>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

  // Scores a batch. With pool == nullptr each reward scores its samples serially (same results).
  // Must not be called from a worker of `pool`. Never throws for a reward's failure: a reward that
  // throws gets error outputs (retried sample by sample to isolate the bad sample), one that
  // exceeds its timeout_s gets "timed out" error outputs.
  std::vector<SampleScore> score(const std::vector<RewardInput>& inputs, ThreadPool* pool) const;

  // {"reward": total, "rewards": {label: score}, "reward_components": {label: {...}},
  //  "reward_diagnostics": {label: {...}}, "reward_errors": {label: message} (only when any)}.
  json to_json(const SampleScore& s) const;

 private:
  static std::vector<RewardOutput> score_entry(const RewardEntry& e, const std::vector<RewardInput>& inputs,
                                               ThreadPool* pool);
  std::vector<RewardEntry> entries_;
};

// Running statistics per reward label and for the total, for logs and the CLI summary.
class RewardStats {
 public:
  explicit RewardStats(const RewardSet& set);
  void add(const std::vector<SampleScore>& batch);
  struct Column {
    std::string label;
    long long n = 0, errors = 0;
    double mean = 0.0, m2 = 0.0, min = 0.0, max = 0.0;  // Welford
    double std() const;  // population standard deviation
  };
  const std::vector<Column>& columns() const { return columns_; }  // entries..., then "total"
  // {"<label>/mean": .., "<label>/std": .., "<label>/min", "<label>/max", "<label>/errors"}
  json to_json() const;
  // An aligned text table, one row per label.
  std::string table() const;

 private:
  static void push(Column& c, double v, bool error);
  std::vector<Column> columns_;
};

}  // namespace r1kit::rewards
