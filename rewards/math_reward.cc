#include "rewards/math_reward.h"

#include "core/check.h"
#include "core/config.h"

namespace r1kit::rewards {

MathAccuracyReward::MathAccuracyReward(MathAccuracyOptions options) : options_(std::move(options)) {}

RewardOutput MathAccuracyReward::score_one(const RewardInput& input) const {
  RewardOutput out;
  out.score = options_.wrong_score;
  auto it = input.fields.find(options_.gold_field);
  if (it == input.fields.end() || it->is_null()) {
    out.error = true;
    out.error_message = "math accuracy: the sample has no gold field '" + options_.gold_field + "'";
    return out;
  }
  std::string gold;
  try {
    gold = gold_from_field(*it, options_.gold_format);
  } catch (const std::exception& e) {
    out.error = true;
    out.error_message = std::string("math accuracy: field '") + options_.gold_field + "': " + e.what();
    return out;
  }
  out.diagnostics["gold"] = gold;
  std::optional<std::string> pred = extract_answer(input.completion, options_.extract);
  out.components["extracted"] = pred ? 1.0 : 0.0;
  if (!pred) {
    out.components["answer"] = 0.0;
    out.diagnostics["extracted"] = nullptr;
    out.diagnostics["reason"] = "no answer found in the completion";
    return out;
  }
  MathVerifyResult r = math_verify(gold, *pred, options_.verify);
  out.score = r.correct ? options_.correct_score : options_.wrong_score;
  out.components["answer"] = r.correct ? 1.0 : 0.0;
  out.diagnostics["extracted"] = *pred;
  out.diagnostics["gold_parsed"] = r.gold_parsed;
  out.diagnostics["pred_parsed"] = r.pred_parsed;
  out.diagnostics["reason"] = r.reason;
  out.diagnostics["exact"] = r.exact;
  return out;
}

std::unique_ptr<Reward> make_math_accuracy_reward(ConfigNode& node) {
  MathAccuracyOptions o;
  node.read("gold_field", o.gold_field);
  std::string format = "auto";
  node.read_enum("gold_format", format, {"auto", "latex", "gsm8k", "int"});
  o.gold_format = parse_gold_format(format, node.where());
  node.read("correct_score", o.correct_score);
  node.read("wrong_score", o.wrong_score);
  node.read("float_rounding", o.verify.float_rounding);
  if (o.verify.float_rounding < 0 || o.verify.float_rounding > 30) node.fail("float_rounding", "must be in [0, 30]");
  node.read("strict", o.verify.strict);
  node.read("allow_set_relation", o.verify.allow_set_relation);
  node.read("after_think", o.extract.after_think);
  if (node.has("fallbacks")) {
    ConfigNode fb = node.child("fallbacks");
    fb.read("answer_tag", o.extract.answer_tag);
    fb.read("answer_phrase", o.extract.answer_phrase);
    fb.read("last_math", o.extract.last_math);
    fb.read("last_number", o.extract.last_number);
    fb.finish();
  }
  return std::make_unique<MathAccuracyReward>(std::move(o));
}

}  // namespace r1kit::rewards
