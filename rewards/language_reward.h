// Language consistency (DeepSeek-R1 §2.3.3): the share of the chain of thought written in the
// target language, detected by script.
//
// The thought (see thought_of in text_util.h; scope: completion uses the whole text) is cut into
// units. unit "words": a maximal run of letters of one script is one word, except that every Han,
// Hiragana and Katakana character is a word of its own (those languages write no spaces).
// unit "chars": every letter is a unit. Digits, punctuation, symbols, spaces and combining marks
// are not units, nor are the tags <think>, </think>, <answer>, </answer>. A unit is in the target language when its script belongs to it:
//   en: Latin    zh: Han    ja: Han, Hiragana, Katakana    ko: Hangul, Han    ru: Cyrillic    ar: Arabic
// score = target units / all units; `empty_score` when there are no units.
#pragma once
#include <memory>
#include <string>

#include "core/config.h"
#include "rewards/reward.h"
#include "rewards/text_util.h"

namespace r1kit::rewards {

struct LanguageOptions {
  std::string language = "en";          // target: en, zh, ja, ko, ru, ar
  std::string language_field;           // if set and the sample has this string field, it is the target
  std::string scope = "thought";        // "thought" or "completion"
  std::string unit = "words";           // "words" or "chars"
  Prefill think_prefilled = Prefill::kAuto;  // the completion starts inside the thought
  double empty_score = 0.0;             // score when the text has no letters at all
};

class LanguageConsistencyReward : public Reward {
 public:
  explicit LanguageConsistencyReward(LanguageOptions options);
  RewardOutput score_one(const RewardInput& input) const override;

 private:
  LanguageOptions options_;
};

// The counts behind the score, exposed for tests and diagnostics.
struct LanguageCounts {
  std::size_t target = 0;
  std::size_t total = 0;
};
LanguageCounts count_language_units(std::string_view text, const std::string& language, bool words);
bool is_supported_language(const std::string& language);

std::unique_ptr<Reward> make_language_reward(ConfigNode& options);

}  // namespace r1kit::rewards
