// Text helpers shared by the rule rewards: UTF-8 decoding, script classification, tag counting,
// splitting a completion into thought and answer, and the completion length in tokens.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "core/config.h"
#include "rewards/reward.h"

namespace r1kit::rewards {

// Decodes the code point starting at s[i] and advances i. Invalid or truncated sequences decode
// as U+FFFD and advance by one byte, so any byte string is walked in linear time.
char32_t next_code_point(std::string_view s, std::size_t& i);

// Number of code points (invalid bytes count one each).
std::size_t count_code_points(std::string_view s);

// The writing system of a code point, for language detection.
enum class Script { kNone, kLatin, kHan, kHiragana, kKatakana, kHangul, kCyrillic, kArabic, kOtherLetter };
// kNone: digits, punctuation, symbols, spaces, marks. kOtherLetter: letters of other scripts
// (Greek, Hebrew, Devanagari, Thai, ...), which count against every target.
Script script_of(char32_t cp);

// Non-overlapping occurrences of `needle` in `hay` (needle non-empty).
std::size_t count_occurrences(std::string_view hay, std::string_view needle);

// True when the prompt ends with an opening <think> (trailing whitespace ignored): the chat
// template pre-fills the thought (DeepSeek-R1-Distill, Qwen3 thinking), so the completion starts
// inside it and contains only the closing tag.
bool prompt_prefills_think(std::string_view prompt);

// The chain of thought of a completion: the text after the first "<think>" (or from the start
// when `prefilled`, or when there is no "<think>") up to the first "</think>" (or the end when
// there is none).
std::string_view thought_of(std::string_view completion, bool prefilled);

// The completion length in tokens: fields["completion_tokens"] when it is a non-negative integer
// (the rollout knows the exact count), else ceil(code points / chars_per_token).
double completion_length_tokens(const RewardInput& input, double chars_per_token);

// Resolves a "think_prefilled" option: true, false or "auto" (= prompt_prefills_think).
enum class Prefill { kNo, kYes, kAuto };
bool is_prefilled(Prefill mode, const RewardInput& input);
// Reads key (true | false | "auto") into out; anything else is an Error naming the key.
void read_prefill(ConfigNode& node, const std::string& key, Prefill& out);

}  // namespace r1kit::rewards
