// Format rewards for R1-style completions.
//
// "format": 1 when the completion has the R1 shape, else 0:
//   [whitespace] <think> thought </think> answer                    (answer_tags: false)
//   [whitespace] <think> thought </think> \s* <answer> a </answer> \s* (answer_tags: true)
// with exactly one of each tag. When the chat template pre-fills "<think>" (think_prefilled, or
// "auto" = the prompt ends with <think>), the completion must contain no "<think>" and exactly
// one "</think>"; otherwise a pre-filled template would always score 0.
//
// "tag_count": partial credit as open-r1's tag_count_reward: each expected tag string that occurs
// exactly once earns 1/k of the reward (k = 4 with answer tags: 0.25 each). With newlines (the
// open-r1 default) the strings are "<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>".
// When the thought is pre-filled, "<think>" must occur zero times instead of once.
#pragma once
#include <memory>

#include "core/config.h"
#include "rewards/reward.h"
#include "rewards/text_util.h"

namespace r1kit::rewards {

struct FormatOptions {
  Prefill think_prefilled = Prefill::kAuto;  // completion starts inside the thought: true/false/"auto"
  bool answer_tags = false;                  // require <answer>...</answer> after </think>
  bool require_answer = true;                // the answer (after </think> / inside <answer>) is non-blank
  bool require_thought = false;              // the thought is non-blank
};

class FormatReward : public Reward {
 public:
  explicit FormatReward(FormatOptions options) : options_(options) {}
  RewardOutput score_one(const RewardInput& input) const override;

 private:
  FormatOptions options_;
};

struct TagCountOptions {
  Prefill think_prefilled = Prefill::kAuto;  // "<think>" expected 0 times instead of once
  bool answer_tags = true;                   // also count <answer> and </answer>
  bool newlines = true;                      // count the open-r1 strings with their newlines
};

class TagCountReward : public Reward {
 public:
  explicit TagCountReward(TagCountOptions options) : options_(options) {}
  RewardOutput score_one(const RewardInput& input) const override;

 private:
  TagCountOptions options_;
};

std::unique_ptr<Reward> make_format_reward(ConfigNode& options);
std::unique_ptr<Reward> make_tag_count_reward(ConfigNode& options);

}  // namespace r1kit::rewards
