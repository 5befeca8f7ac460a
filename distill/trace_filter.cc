#include "distill/trace_filter.h"

#include "core/check.h"
#include "rewards/registry.h"

namespace r1kit::distill {
namespace {

// Reads one reward check: `false` disables it, a mapping sets reward / options / min_score.
void read_check(ConfigNode& node, const std::string& key, RewardCheck& c, bool fixed_reward) {
  if (!node.has(key)) {
    node.ignore(key);
    c.where = node.where();
    c.path = node.key_path(key) + ".options";
    return;
  }
  if (node.raw().at(key).is_boolean()) {
    node.read(key, c.enabled);
    c.where = node.where();
    c.path = node.key_path(key) + ".options";
    return;
  }
  ConfigNode sub = node.child(key);
  sub.read("enabled", c.enabled);
  if (!fixed_reward) sub.read("reward", c.reward);
  sub.read("min_score", c.min_score);
  if (sub.has("options")) c.options = sub.child("options").raw();
  c.where = sub.where();
  c.path = sub.key_path("options");
  sub.finish();
}

std::unique_ptr<rewards::Reward> make_reward(const std::string& name, const json& options, const std::string& where,
                                             const std::string& path) {
  ConfigNode node(options, where, path);
  return rewards::RewardRegistry::global().create(name, node);
}

int label_index(const rewards::RewardSet& set, const char* label) {
  const auto& e = set.entries();
  for (size_t i = 0; i < e.size(); ++i)
    if (e[i].label == label) return static_cast<int>(i);
  return -1;
}

}  // namespace

FilterOptions read_filter_options(ConfigNode& node) {
  FilterOptions o;
  read_check(node, "correctness", o.correctness, /*fixed_reward=*/false);
  read_check(node, "format", o.format, false);
  read_check(node, "language", o.language, /*fixed_reward=*/true);
  if (node.has("repetition") && node.raw().at("repetition").is_boolean()) {
    node.read("repetition", o.repetition);
  } else {
    ConfigNode rep = node.child("repetition");
    rep.read("enabled", o.repetition);
    rep.read("max_fraction", o.max_repeat_fraction);
    if (rep.has("options")) o.repetition_options = rep.child("options").raw();
    if (!(o.max_repeat_fraction >= 0 && o.max_repeat_fraction <= 1)) rep.fail("max_fraction", "must be in [0, 1]");
    if (o.repetition_options.contains("max_penalty"))
      rep.fail("options", "max_penalty is fixed at -1 here (the score is minus the repeated share)");
    rep.finish();
  }
  ConfigNode len = node.child("length");
  len.read("min_tokens", o.min_tokens);
  len.read("max_tokens", o.max_tokens);
  len.read("reject_truncated", o.reject_truncated);
  if (o.min_tokens < 0) len.fail("min_tokens", "must be >= 0");
  if (o.max_tokens < 0) len.fail("max_tokens", "must be >= 0 (0 = no bound)");
  if (o.max_tokens > 0 && o.max_tokens < o.min_tokens) len.fail("max_tokens", "must be >= min_tokens");
  len.finish();
  node.finish();
  // Build every reward once now, so bad names and options fail before any generation.
  build_filter_rewards(o, rewards::RewardSet(), node.where());
  return o;
}

rewards::RewardSet build_filter_rewards(const FilterOptions& o, const rewards::RewardSet& extra, const std::string& where) {
  rewards::RewardSet set;
  auto add_check = [&](const RewardCheck& c, const char* label) {
    if (!c.enabled) return;
    rewards::RewardEntry e;
    e.label = label;
    e.name = c.reward;
    e.weight = 0.0;
    e.reward = make_reward(c.reward, c.options, c.where.empty() ? where : c.where, c.path);
    set.add(std::move(e));
  };
  add_check(o.correctness, kCorrectLabel);
  add_check(o.format, kFormatLabel);
  add_check(o.language, kLanguageLabel);
  if (o.repetition) {
    rewards::RewardEntry e;
    e.label = kRepetitionLabel;
    e.name = "repetition";
    e.weight = 0.0;
    json opts = o.repetition_options;
    opts["max_penalty"] = -1.0;
    e.reward = make_reward("repetition", opts, where, "filters.repetition.options");
    set.add(std::move(e));
  }
  for (const auto& e : extra.entries()) {
    for (const char* reserved : {kCorrectLabel, kFormatLabel, kLanguageLabel, kRepetitionLabel})
      R1_CHECK(e.label != reserved, where, ": reward label '", e.label,
               "' is used by the filters; give this reward another label");
    set.add(e);
  }
  return set;
}

const char* reason_name(Reason r) {
  switch (r) {
    case Reason::kAccepted: return "accepted";
    case Reason::kRewardError: return "reward_error";
    case Reason::kTruncated: return "truncated";
    case Reason::kTooShort: return "too_short";
    case Reason::kTooLong: return "too_long";
    case Reason::kFormat: return "format";
    case Reason::kIncorrect: return "incorrect";
    case Reason::kLanguage: return "language";
    case Reason::kRepetition: return "repetition";
  }
  return "?";
}

const std::vector<Reason>& rejection_reasons() {
  static const std::vector<Reason> all = {Reason::kRewardError, Reason::kTruncated, Reason::kTooShort,
                                          Reason::kTooLong,     Reason::kFormat,    Reason::kIncorrect,
                                          Reason::kLanguage,    Reason::kRepetition};
  return all;
}

FilterVerdict check_sample(const FilterOptions& o, const rewards::RewardSet& set, const Sample& sample,
                           const rewards::SampleScore& score) {
  R1_CHECK(score.outputs.size() == set.entries().size(), "check_sample: ", score.outputs.size(),
           " reward outputs for a set of ", set.entries().size());
  FilterVerdict v;
  auto fail = [&](Reason r) { v.failed.push_back(r); };
  bool reward_error = false;
  // A check whose reward errored is not evidence either way: the sample is rejected as reward_error.
  auto check = [&](const char* label, double min_score, Reason r, bool at_most) {
    const int i = label_index(set, label);
    if (i < 0) return;
    const auto& out = score.outputs[i];
    if (out.error) {
      reward_error = true;
      return;
    }
    const bool ok = at_most ? -out.score <= min_score : out.score >= min_score;
    if (!ok) fail(r);
  };
  const auto n = static_cast<int64_t>(sample.completion_ids.size());
  if (o.reject_truncated && sample.finish_reason == FinishReason::kLength) fail(Reason::kTruncated);
  if (n < o.min_tokens) fail(Reason::kTooShort);
  if (o.max_tokens > 0 && n > o.max_tokens) fail(Reason::kTooLong);
  if (o.format.enabled) check(kFormatLabel, o.format.min_score, Reason::kFormat, false);
  if (o.correctness.enabled) check(kCorrectLabel, o.correctness.min_score, Reason::kIncorrect, false);
  if (o.language.enabled) check(kLanguageLabel, o.language.min_score, Reason::kLanguage, false);
  if (o.repetition) check(kRepetitionLabel, o.max_repeat_fraction, Reason::kRepetition, true);
  if (reward_error) fail(Reason::kRewardError);
  if (!v.failed.empty()) {
    // The first failing check in Reason order.
    v.reason = v.failed.front();
    for (Reason r : v.failed)
      if (static_cast<int>(r) < static_cast<int>(v.reason)) v.reason = r;
  }
  return v;
}

}  // namespace r1kit::distill
