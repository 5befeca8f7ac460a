// Reward model: a Hugging Face sequence-classification checkpoint (Qwen2ForSequenceClassification,
// LlamaForSequenceClassification, ...: the decoder plus a bias-free linear "score" head) scoring
// (prompt, completion) as one text, registered as the "reward_model" reward:
//
//   rewards:
//     - name: reward_model
//       weight: 1.0
//       options: {model: /models/rm, template: "{prompt}{completion}", batch_size: 8, device: cuda}
//
// Score (as transformers computes it): the head's logits at the rightmost token that is not the
// config's pad_token_id (the last token when there is none), then `label` picks a column, with an
// optional sigmoid / softmax. Texts are tokenized with the checkpoint's tokenizer (its special
// tokens added, as tokenizer(text) does) and batched right-padded by length (causal attention:
// padding after a sequence cannot change its last token). Longer than max_length tokens: an error
// output (the sample is masked in training), never a truncated score.
#pragma once
#include <torch/types.h>

#include <memory>
#include <mutex>
#include <string>

#include "model/tokenizer.h"
#include "model/transformer.h"
#include "rewards/reward.h"

namespace r1kit {
class ConfigNode;
}

namespace r1kit::rewards {

// Fills "{prompt}", "{completion}" and "{field_name}" (a string or number field of the sample) in
// `tmpl`; "{{" and "}}" are literal braces. An unknown field is an Error naming it.
std::string render_reward_template(const std::string& tmpl, const RewardInput& input);

struct RewardModelOptions {
  std::string model;                          // HF *ForSequenceClassification directory (required)
  std::string template_text = "{prompt}{completion}";  // the text the model scores
  bool chat = false;                          // instead: the checkpoint's chat template over
                                              // [user: prompt, assistant: completion]
  int64_t label = 0;                          // column of the head's output used as the score
  std::string activation = "none";            // none | sigmoid | softmax (probability of `label`)
  int64_t batch_size = 8;                     // texts per forward
  int64_t max_length = 4096;                  // tokens; longer texts get an error output
  std::string device = "cpu";                 // cpu | cuda | cuda:N
  std::string dtype = "auto";                 // auto (bf16 on CUDA, f32 on CPU) | float32 | bfloat16 | float16
};

class RewardModelReward : public Reward {
 public:
  explicit RewardModelReward(RewardModelOptions options);
  // Batches the inputs by length; thread-safe (one forward at a time).
  std::vector<RewardOutput> score_batch(const std::vector<RewardInput>& inputs, ThreadPool* pool) const override;
  RewardOutput score_one(const RewardInput& input) const override;
  // The raw head outputs [n, num_labels] (float32) for token id lists (for tests and tools).
  torch::Tensor head_logits(const std::vector<std::vector<int64_t>>& ids) const;
  int64_t num_labels() const { return score_weight_.size(0); }
  // The text the model scores for `input` (template or chat rendering).
  std::string text_of(const RewardInput& input) const;

 private:
  RewardModelOptions options_;
  mutable Transformer model_{nullptr};
  torch::Tensor score_weight_;  // [num_labels, hidden]
  int64_t pad_id_ = -1;         // config pad_token_id (-1: none)
  Tokenizer tokenizer_;
  mutable std::mutex mu_;
};

// Keys: model (required), template, chat, label, activation, batch_size, max_length, device, dtype.
std::unique_ptr<Reward> make_reward_model_reward(ConfigNode& options);

}  // namespace r1kit::rewards
