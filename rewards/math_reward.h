// The math accuracy reward: 1 when the completion's final answer equals the gold answer, else 0.
// The rewards registry registers it as "accuracy" (alias "math").
#pragma once
#include <memory>
#include <string>

#include "rewards/math_verify.h"
#include "rewards/reward.h"

namespace r1kit {
class ConfigNode;
}

namespace r1kit::rewards {

struct MathAccuracyOptions {
  std::string gold_field = "answer";         // dataset field holding the gold answer
  GoldFormat gold_format = GoldFormat::kAuto;  // how that field is written
  ExtractOptions extract;                    // how the completion's answer is found
  MathVerifyOptions verify;                  // equivalence settings (extraction is done by `extract`)
  double correct_score = 1.0;                // score for a correct answer
  double wrong_score = 0.0;                  // score for a wrong or missing answer
};

class MathAccuracyReward : public Reward {
 public:
  explicit MathAccuracyReward(MathAccuracyOptions options = {});
  // components: {"answer": 0|1, "extracted": 0|1}; diagnostics: extracted, gold, gold_parsed,
  // pred_parsed, reason. A missing gold field is an error output, not a wrong answer.
  RewardOutput score_one(const RewardInput& input) const override;
  const MathAccuracyOptions& options() const { return options_; }

 private:
  MathAccuracyOptions options_;
};

// Config keys (all optional): gold_field, gold_format (auto|latex|gsm8k|int), correct_score,
// wrong_score, float_rounding, strict, allow_set_relation, after_think, fallbacks: {answer_tag,
// answer_phrase, last_math, last_number} (booleans). Unknown keys are rejected by the caller's finish().
std::unique_ptr<Reward> make_math_accuracy_reward(ConfigNode& options);

}  // namespace r1kit::rewards
