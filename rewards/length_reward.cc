#include "rewards/length_reward.h"

#include <algorithm>
#include <cmath>
#include <string_view>
#include <unordered_set>

#include "core/check.h"
#include "rewards/registry.h"
#include "rewards/text_util.h"

namespace r1kit::rewards {

CosineLengthReward::CosineLengthReward(CosineOptions options, std::unique_ptr<Reward> correctness)
    : options_(options), correctness_(std::move(correctness)) {}

double CosineLengthReward::value(const CosineOptions& o, double length, bool correct) {
  const double progress = std::clamp(length / o.max_len, 0.0, 1.0);
  const double c = std::cos(progress * M_PI);
  // The value at progress 0 is `start`, at progress 1 `end`.
  const double start = correct ? o.max_value_correct : o.min_value_wrong;
  const double end = correct ? o.min_value_correct : o.max_value_wrong;
  return end + 0.5 * (start - end) * (1.0 + c);
}

std::vector<RewardOutput> CosineLengthReward::score_batch(const std::vector<RewardInput>& inputs,
                                                          ThreadPool* pool) const {
  std::vector<RewardOutput> verdicts = correctness_->score_batch(inputs, pool);
  R1_CHECK(verdicts.size() == inputs.size(), "cosine reward: correctness reward returned ", verdicts.size(),
           " results for ", inputs.size(), " samples");
  std::vector<RewardOutput> out(inputs.size());
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const RewardOutput& v = verdicts[i];
    RewardOutput& o = out[i];
    const double length = options_.length_unit == "tokens"
                              ? completion_length_tokens(inputs[i], options_.chars_per_token)
                              : static_cast<double>(count_code_points(inputs[i].completion));
    o.diagnostics = {{"length", length}, {"correctness_score", v.score}};
    if (v.error) {
      o.error = true;
      o.error_message = "correctness reward failed: " + v.error_message;
      continue;
    }
    const bool correct = v.score >= options_.correct_threshold;
    o.score = value(options_, length, correct);
    o.components["correct"] = correct ? 1.0 : 0.0;
  }
  return out;
}

RewardOutput CosineLengthReward::score_one(const RewardInput& input) const {
  return score_batch({input}, nullptr).at(0);
}

double OverlongReward::value(const OverlongOptions& o, double length) {
  const double expected = o.max_len - o.cache_len;
  if (length <= expected) return 0.0;
  if (length > o.max_len) return -1.0;
  return (expected - length) / o.cache_len;
}

RewardOutput OverlongReward::score_one(const RewardInput& input) const {
  RewardOutput out;
  const double length = completion_length_tokens(input, options_.chars_per_token);
  out.score = value(options_, length);
  out.diagnostics = {{"length_tokens", length}};
  return out;
}

namespace {

bool is_space(char32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

// Splits into units: words (lower-cased ASCII, split on Unicode whitespace as Python's str.split)
// or single non-space code points.
std::vector<std::string> units_of(std::string_view text, bool words) {
  std::vector<std::string> units;
  std::string cur;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t start = i;
    const char32_t cp = next_code_point(text, i);
    if (is_space(cp)) {
      if (!cur.empty()) units.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    std::string_view bytes = text.substr(start, i - start);
    if (!words) {
      units.emplace_back(bytes);
      continue;
    }
    if (bytes.size() == 1 && bytes[0] >= 'A' && bytes[0] <= 'Z') {
      cur.push_back(static_cast<char>(bytes[0] - 'A' + 'a'));
    } else {
      cur.append(bytes);
    }
  }
  if (!cur.empty()) units.push_back(std::move(cur));
  return units;
}

}  // namespace

RewardOutput RepetitionReward::score_one(const RewardInput& input) const {
  RewardOutput out;
  const std::vector<std::string> units = units_of(input.completion, options_.unit == "words");
  const std::size_t n = static_cast<std::size_t>(options_.ngram_size);
  out.diagnostics = {{"units", units.size()}};
  if (units.size() < n) return out;
  std::unordered_set<std::string> distinct;
  const std::size_t total = units.size() - n + 1;
  distinct.reserve(total);
  std::string key;
  for (std::size_t i = 0; i < total; ++i) {
    key.clear();
    for (std::size_t k = 0; k < n; ++k) {
      key += units[i + k];
      key.push_back('\x1f');  // a separator no unit contains: U+001F counts as whitespace
    }
    distinct.insert(key);
  }
  const double repeated = 1.0 - static_cast<double>(distinct.size()) / static_cast<double>(total);
  out.score = repeated * options_.max_penalty;
  out.diagnostics["ngrams"] = total;
  out.diagnostics["distinct_ngrams"] = distinct.size();
  return out;
}

std::unique_ptr<Reward> make_cosine_reward(ConfigNode& node) {
  CosineOptions o;
  node.read("min_value_wrong", o.min_value_wrong);
  node.read("max_value_wrong", o.max_value_wrong);
  node.read("min_value_correct", o.min_value_correct);
  node.read("max_value_correct", o.max_value_correct);
  node.read("max_len", o.max_len);
  if (!(o.max_len > 0)) node.fail("max_len", "must be > 0");
  node.read_enum("length_unit", o.length_unit, {"chars", "tokens"});
  node.read("chars_per_token", o.chars_per_token);
  if (!(o.chars_per_token > 0)) node.fail("chars_per_token", "must be > 0");
  node.read("correct_threshold", o.correct_threshold);
  // correctness: {name: accuracy, options: {...}} - the reward that decides correct vs wrong.
  ConfigNode correctness = node.child("correctness");
  std::string name = "accuracy";
  correctness.read("name", name);
  ConfigNode inner = correctness.child("options");
  R1_CHECK(RewardRegistry::global().contains(name), node.where(), ": key '", correctness.key_path("name"),
           "': unknown reward '", name, "'");
  auto reward = RewardRegistry::global().create(name, inner);
  correctness.finish();
  return std::make_unique<CosineLengthReward>(o, std::move(reward));
}

std::unique_ptr<Reward> make_overlong_reward(ConfigNode& node) {
  OverlongOptions o;
  node.read("max_len", o.max_len);
  node.read("cache_len", o.cache_len);
  node.read("chars_per_token", o.chars_per_token);
  if (!(o.cache_len > 0)) node.fail("cache_len", "must be > 0");
  if (!(o.max_len >= o.cache_len)) node.fail("max_len", "must be >= cache_len");
  if (!(o.chars_per_token > 0)) node.fail("chars_per_token", "must be > 0");
  return std::make_unique<OverlongReward>(o);
}

std::unique_ptr<Reward> make_repetition_reward(ConfigNode& node) {
  RepetitionOptions o;
  node.read("ngram_size", o.ngram_size);
  if (o.ngram_size < 1) node.fail("ngram_size", "must be >= 1");
  node.read("max_penalty", o.max_penalty);
  if (o.max_penalty > 0) node.fail("max_penalty", "must be <= 0 (it is a penalty)");
  node.read_enum("unit", o.unit, {"words", "chars"});
  return std::make_unique<RepetitionReward>(o);
}

}  // namespace r1kit::rewards
