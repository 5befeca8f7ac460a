// Length-shaped rewards.
//
// "cosine" (Yeo et al. 2025, "Demystifying Long Chain-of-Thought Reasoning"; open-r1's
// get_cosine_scaled_reward): with progress p = min(L / max_len, 1),
//   correct: min_value_correct + (max_value_correct - min_value_correct) * (1 + cos(pi p)) / 2
//   wrong:   max_value_wrong  + (min_value_wrong  - max_value_wrong)  * (1 + cos(pi p)) / 2
// so short correct answers earn most and short wrong answers are punished most. Correctness comes
// from another registered reward (`correctness`, default accuracy): correct when its score is
// >= correct_threshold; its error is this reward's error. L counts code points (open-r1) or tokens.
//
// "overlong" (DAPO soft overlong punishment), L in tokens (see completion_length_tokens):
//   0 for L <= max_len - cache_len;  (max_len - cache_len - L) / cache_len up to max_len;  -1 beyond.
//
// "repetition" (open-r1's repetition_penalty_reward): with the completion cut into units (words:
// lower-cased whitespace-separated words; chars: non-space code points, for languages without
// spaces), score = (1 - distinct n-grams / n-grams) * max_penalty; 0 for fewer than n units.
#pragma once
#include <memory>
#include <string>

#include "core/config.h"
#include "rewards/reward.h"

namespace r1kit::rewards {

struct CosineOptions {
  double min_value_wrong = -1.0;    // wrong answer at length 0
  double max_value_wrong = -0.5;    // wrong answer at max_len
  double min_value_correct = 0.5;   // correct answer at max_len
  double max_value_correct = 1.0;   // correct answer at length 0
  double max_len = 1000;            // length at which the cosine reaches its end value
  std::string length_unit = "chars";  // "chars" (code points, as open-r1) or "tokens"
  double chars_per_token = 4.0;     // tokens estimate when fields lack "completion_tokens"
  double correct_threshold = 1.0;   // the correctness reward's score counted as correct
};

class CosineLengthReward : public Reward {
 public:
  CosineLengthReward(CosineOptions options, std::unique_ptr<Reward> correctness);
  std::vector<RewardOutput> score_batch(const std::vector<RewardInput>& inputs, ThreadPool* pool) const override;
  RewardOutput score_one(const RewardInput& input) const override;
  // The formula alone (progress already computed), for tests.
  static double value(const CosineOptions& o, double length, bool correct);

 private:
  CosineOptions options_;
  std::unique_ptr<Reward> correctness_;
};

struct OverlongOptions {
  double max_len = 20480;         // L_max, tokens (DAPO: 20480)
  double cache_len = 4096;        // L_cache, the soft-penalty window (DAPO: 4096)
  double chars_per_token = 4.0;   // tokens estimate when fields lack "completion_tokens"
};

class OverlongReward : public Reward {
 public:
  explicit OverlongReward(OverlongOptions options) : options_(options) {}
  RewardOutput score_one(const RewardInput& input) const override;
  static double value(const OverlongOptions& o, double length_tokens);

 private:
  OverlongOptions options_;
};

struct RepetitionOptions {
  int ngram_size = 3;           // n
  double max_penalty = -1.0;    // score when every n-gram repeats; must be <= 0
  std::string unit = "words";   // "words" or "chars"
};

class RepetitionReward : public Reward {
 public:
  explicit RepetitionReward(RepetitionOptions options) : options_(options) {}
  RewardOutput score_one(const RewardInput& input) const override;

 private:
  RepetitionOptions options_;
};

std::unique_ptr<Reward> make_cosine_reward(ConfigNode& options);
std::unique_ptr<Reward> make_overlong_reward(ConfigNode& options);
std::unique_ptr<Reward> make_repetition_reward(ConfigNode& options);

}  // namespace r1kit::rewards
