// Countdown (TinyZero): reach `target` with an arithmetic equation that uses each of the given
// numbers exactly once, with + - * / (also written − × ÷) and parentheses.
//
// The equation is the text of the last <answer>...</answer> in the completion. Scores, as
// TinyZero's countdown compute_score: 0 when there is no <answer>; `format_score` (0.1) when
// there is one but it is not a valid equation, uses other numbers, divides by zero or misses the
// target; `score` (1.0) when it equals the target. Arithmetic is exact (rationals), where TinyZero
// uses Python floats with a 1e-5 tolerance. Unary +/- are allowed as Python's eval allows them;
// decimal points are not (TinyZero would read "2.5" as the numbers 2 and 5).
// Fields: "nums" or "numbers" (array of integers) and "target" (number).
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/config.h"
#include "rewards/reward.h"

namespace r1kit::rewards {

struct CountdownOptions {
  double format_score = 0.1;  // an equation was given but is wrong
  double score = 1.0;         // the equation is right
  bool allow_unary = true;    // accept unary + and - ("-3+5"), as Python's eval does
  std::size_t max_equation_chars = 4096;  // longer answers are wrong (format_score), not parsed
};

// The result of checking one equation; `value` is the exact result as "p/q" or "p".
struct CountdownCheck {
  bool parsed = false;        // valid syntax, allowed characters only, no division by zero
  bool numbers_ok = false;    // uses each given number exactly once
  bool equals_target = false;
  std::string value;
  std::string reason;         // why it failed
};
CountdownCheck check_countdown_equation(const std::string& equation, const std::vector<long long>& numbers,
                                        const json& target, bool allow_unary);

// The text inside the last <answer>...</answer> (non-overlapping pairs scanned left to right,
// like re.finditer with DOTALL), trimmed; nullopt when there is none.
std::optional<std::string> last_answer_tag(const std::string& completion);

class CountdownReward : public Reward {
 public:
  explicit CountdownReward(CountdownOptions options) : options_(options) {}
  RewardOutput score_one(const RewardInput& input) const override;

 private:
  CountdownOptions options_;
};

std::unique_ptr<Reward> make_countdown_reward(ConfigNode& options);

}  // namespace r1kit::rewards
