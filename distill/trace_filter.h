// The acceptance checks of rejection sampling and distillation data: a sample is kept only when it
// is correct, well formatted (<think>...</think> + answer), language-consistent, free of degenerate
// repetition and within length bounds. The checks read the outputs of the existing rewards
// (rewards/: accuracy or any registry reward, format, language, repetition), which the filter adds
// to the job's reward set under fixed labels with weight 0, so every record also carries them.
//
//   filters:
//     correctness: {reward: accuracy, options: {}, min_score: 1.0}   # or false
//     format: {reward: format, options: {answer_tags: true}, min_score: 1.0}
//     language: {options: {language: en}, min_score: 0.95}         # reward "language"
//     repetition: {options: {ngram_size: 4, unit: words}, max_fraction: 0.5}  # repeated n-gram share
//     length: {min_tokens: 1, max_tokens: 0, reject_truncated: true}
//
// A rejected sample is counted under the first failing check, in the order of Reason below; every
// failing check is also counted separately (stats "failed_checks").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/json.h"
#include "rewards/reward_set.h"
#include "rollout/rollout.h"

namespace r1kit::distill {

struct RewardCheck {
  bool enabled = true;
  std::string reward;              // registry name
  json options = json::object();   // the reward's options
  double min_score = 1.0;          // pass when score >= min_score
  std::string where, path;         // config file and key path of `options`, for errors
};

struct FilterOptions {
  RewardCheck correctness{true, "accuracy", json::object(), 1.0, "", ""};
  RewardCheck format{true, "format", json::object(), 1.0, "", ""};
  RewardCheck language{true, "language", json::object(), 0.95, "", ""};
  bool repetition = true;                     // reject degenerate n-gram repetition
  json repetition_options = json::object();   // the repetition reward's ngram_size / unit
  double max_repeat_fraction = 0.5;           // reject when more than this share of n-grams repeats
  int64_t min_tokens = 1;                     // completion tokens, inclusive
  int64_t max_tokens = 0;                     // 0 = no upper bound
  bool reject_truncated = true;               // reject samples cut by max_new_tokens (finish_reason length)
};

// Reads the `filters` section (finish() included); validates every reward's options now.
FilterOptions read_filter_options(ConfigNode& node);

// Labels the checks use in the reward set and in each record's "rewards".
inline constexpr const char* kCorrectLabel = "correctness";
inline constexpr const char* kFormatLabel = "format";
inline constexpr const char* kLanguageLabel = "language";
inline constexpr const char* kRepetitionLabel = "repetition";

// The job's reward set: the enabled checks' rewards (weight 0) followed by `extra` (the job's own
// rewards, whose weighted total is the record's "reward"). An extra label equal to a check label is
// an Error naming `where`.
rewards::RewardSet build_filter_rewards(const FilterOptions& o, const rewards::RewardSet& extra,
                                        const std::string& where);

enum class Reason { kAccepted, kRewardError, kTruncated, kTooShort, kTooLong, kFormat, kIncorrect, kLanguage, kRepetition };
const char* reason_name(Reason r);  // "accepted", "reward_error", "truncated", "too_short", ...
// Every rejection reason, in check order.
const std::vector<Reason>& rejection_reasons();

struct FilterVerdict {
  Reason reason = Reason::kAccepted;  // the first failing check
  std::vector<Reason> failed;         // every failing check
  bool accepted() const { return reason == Reason::kAccepted; }
};

// Checks one scored sample; `set` is the set built by build_filter_rewards.
FilterVerdict check_sample(const FilterOptions& o, const rewards::RewardSet& set, const Sample& sample,
                           const rewards::SampleScore& score);

}  // namespace r1kit::distill
