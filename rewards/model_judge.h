// LLM judge: a local causal LM (any checkpoint r1kit loads) asked about each sample through a prompt
// template, its greedy answer parsed into a score. Registered as the "llm_judge" reward:
//
//   rewards:
//     - name: llm_judge
//       options:
//         model: /models/judge
//         template: "Question: {prompt}\nAnswer: {completion}\nReference: {answer}\nIs the answer correct? ..."
//         verdict_regex: "(?i)verdict:\\s*(yes|no)"
//         labels: {yes: 1, no: 0}
//
// Each sample's prompt is the template filled in (rewards/model_reward.h render_reward_template),
// by default wrapped as one user turn in the judge's chat template with the generation prompt. The
// samples of a batch are generated together by the rollout engine (greedy unless temperature > 0,
// max_new_tokens, stop strings). The verdict is the first capture group of verdict_regex (RE2
// syntax) in the answer: looked up in `labels` when given, else read as a number and multiplied by
// `scale`. An answer without a parsable verdict is an error output (masked in training), never a 0.
#pragma once
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "model/tokenizer.h"
#include "rewards/reward.h"
#include "rollout/engine.h"

namespace r1kit {
class ConfigNode;
}

namespace r1kit::rewards {

struct JudgeOptions {
  std::string model;                 // causal LM directory with tokenizer files (required)
  std::string template_text = "Evaluate the response to the question.\n\nQuestion:\n{prompt}\n\nResponse:\n{completion}\n\n"
                              "Is the response correct and complete? End with 'Verdict: yes' or 'Verdict: no'.";
  bool chat = true;                  // wrap the filled template as a user turn of the judge's chat template
  std::string verdict_regex = "(?i)verdict\\s*:\\s*\\**\\s*(yes|no)";  // first capture group = the verdict
  std::map<std::string, double> labels = {{"yes", 1.0}, {"no", 0.0}};  // verdict (lower-cased) -> score; empty: a number
  double scale = 1.0;                // numeric verdicts: score = scale * number
  bool last_match = true;            // use the last match in the answer (judges often restate)
  int64_t max_new_tokens = 64;
  double temperature = 0.0;          // 0 = greedy
  std::vector<std::string> stop_strings;
  int64_t batch_size = 16;           // samples generated together
  std::string device = "cpu";
  std::string dtype = "auto";
};

// The verdict in `answer`: labels[capture] or scale * number(capture). Throws Error (naming the
// answer's start) when there is no match, an unknown label or a non-numeric capture.
double parse_verdict(const std::string& answer, const JudgeOptions& options);

class JudgeReward : public Reward {
 public:
  explicit JudgeReward(JudgeOptions options);
  std::vector<RewardOutput> score_batch(const std::vector<RewardInput>& inputs, ThreadPool* pool) const override;
  RewardOutput score_one(const RewardInput& input) const override;
  // The judge's prompt text for `input`.
  std::string prompt_of(const RewardInput& input) const;

 private:
  JudgeOptions options_;
  std::string chat_template_dir_;
  Tokenizer tokenizer_;
  Transformer model_{nullptr};
  mutable std::mutex mu_;  // one generation at a time
};

// Keys: model (required), template, chat, verdict_regex, labels, scale, last_match, max_new_tokens,
// temperature, stop_strings, batch_size, device, dtype.
std::unique_ptr<Reward> make_judge_reward(ConfigNode& options);

}  // namespace r1kit::rewards
