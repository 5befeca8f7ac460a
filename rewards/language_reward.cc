#include "rewards/language_reward.h"

#include "core/check.h"

namespace r1kit::rewards {

namespace {

bool script_in_language(Script s, const std::string& lang) {
  if (lang == "en") return s == Script::kLatin;
  if (lang == "zh") return s == Script::kHan;
  if (lang == "ja") return s == Script::kHan || s == Script::kHiragana || s == Script::kKatakana;
  if (lang == "ko") return s == Script::kHangul || s == Script::kHan;
  if (lang == "ru") return s == Script::kCyrillic;
  if (lang == "ar") return s == Script::kArabic;
  return false;
}

bool one_unit_per_char(Script s) { return s == Script::kHan || s == Script::kHiragana || s == Script::kKatakana; }

// Combining marks continue the current word (accents written as base + mark).
bool is_combining_mark(char32_t c) {
  return (c >= 0x0300 && c <= 0x036F) || (c >= 0x0483 && c <= 0x0489) || (c >= 0x064B && c <= 0x065F) ||
         (c >= 0x1AB0 && c <= 0x1AFF) || (c >= 0x20D0 && c <= 0x20FF);
}

}  // namespace

bool is_supported_language(const std::string& l) {
  return l == "en" || l == "zh" || l == "ja" || l == "ko" || l == "ru" || l == "ar";
}

LanguageCounts count_language_units(std::string_view text, const std::string& language, bool words) {
  LanguageCounts counts;
  Script run = Script::kNone;  // script of the word being read (words mode)
  for (std::size_t i = 0; i < text.size();) {
    const char32_t cp = next_code_point(text, i);
    const Script s = script_of(cp);
    if (s == Script::kNone) {
      if (!is_combining_mark(cp)) run = Script::kNone;
      continue;
    }
    if (words && s == run && !one_unit_per_char(s)) continue;  // same word
    run = s;
    ++counts.total;
    if (script_in_language(s, language)) ++counts.target;
  }
  return counts;
}

LanguageConsistencyReward::LanguageConsistencyReward(LanguageOptions options) : options_(std::move(options)) {}

RewardOutput LanguageConsistencyReward::score_one(const RewardInput& input) const {
  std::string language = options_.language;
  if (!options_.language_field.empty() && input.fields.is_object()) {
    auto it = input.fields.find(options_.language_field);
    if (it != input.fields.end() && it->is_string()) language = it->get<std::string>();
  }
  R1_CHECK(is_supported_language(language), "language reward: field '", options_.language_field,
           "' names unsupported language '", language, "' (supported: en, zh, ja, ko, ru, ar)");
  const std::string_view text = options_.scope == "completion"
                                    ? std::string_view(input.completion)
                                    : thought_of(input.completion, is_prefilled(options_.think_prefilled, input));
  // Tag markup is not language: "<think>" must not count as an English word.
  std::string plain(text);
  for (const char* tag : {"<think>", "</think>", "<answer>", "</answer>"}) {
    const std::string t = tag;
    for (auto p = plain.find(t); p != std::string::npos; p = plain.find(t, p)) plain.replace(p, t.size(), " ");
  }
  const LanguageCounts c = count_language_units(plain, language, options_.unit == "words");
  RewardOutput out;
  out.score = c.total == 0 ? options_.empty_score : static_cast<double>(c.target) / static_cast<double>(c.total);
  out.diagnostics = {{"language", language}, {"target_units", c.target}, {"total_units", c.total}};
  return out;
}

std::unique_ptr<Reward> make_language_reward(ConfigNode& node) {
  LanguageOptions o;
  node.read("language", o.language);
  if (!is_supported_language(o.language)) node.fail("language", "'" + o.language + "' is not one of: en, zh, ja, ko, ru, ar");
  node.read("language_field", o.language_field);
  node.read_enum("scope", o.scope, {"thought", "completion"});
  node.read_enum("unit", o.unit, {"words", "chars"});
  read_prefill(node, "think_prefilled", o.think_prefilled);
  node.read("empty_score", o.empty_score);
  return std::make_unique<LanguageConsistencyReward>(o);
}

}  // namespace r1kit::rewards
