// The tiny GRPO set-up shared by the trainer tests: a random Qwen2-shaped model with a one-letter
// tokenizer (vocab 16), a reward the policy can learn token by token, options and prompt stream.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/fs.h"
#include "core/json.h"
#include "grpo/trainer.h"
#include "model/checkpoint.h"
#include "tests/test_util.h"
#include "tests/tokenizer_json_util.h"

namespace r1kit::grpo::tiny {

inline const std::string kLetters = "abcdefghijklmno";  // ids 0..14; <eos> is 15

// Byte-level BPE tokenizer.json with one token per letter (printable ASCII maps to itself).
inline void write_tokenizer(const std::string& dir) {
  make_dirs(dir);
  json vocab = json::object();
  for (size_t i = 0; i < kLetters.size(); ++i) vocab[std::string(1, kLetters[i])] = static_cast<int>(i);
  const json tok = test::byte_level_bpe_tokenizer_json(vocab, "<eos>", 15, /*use_regex=*/false);
  write_file_atomic(dir + "/tokenizer.json", tok.dump());
  write_file_atomic(dir + "/tokenizer_config.json",
                    json({{"tokenizer_class", "PreTrainedTokenizerFast"}, {"eos_token", "<eos>"}}).dump());
}

// A fresh random Qwen2-shaped model (hidden 32, 2 layers) saved as an HF directory. No EOS id:
// every completion runs to max_completion_length (a sample that finishes on its very first token
// crashes the current rollout engine, see the GRPO report).
inline std::string make_tiny_model(const std::string& root) {
  const std::string tok_dir = root + "/tok", dir = root + "/init";
  write_tokenizer(tok_dir);
  json config = {{"model_type", "qwen2"}, {"architectures", {"Qwen2ForCausalLM"}}, {"vocab_size", 16},
                 {"hidden_size", 32}, {"intermediate_size", 64}, {"num_hidden_layers", 2},
                 {"num_attention_heads", 2}, {"num_key_value_heads", 2}, {"max_position_embeddings", 64},
                 {"rms_norm_eps", 1e-6}, {"rope_theta", 10000.0}, {"tie_word_embeddings", true},
                 {"eos_token_id", nullptr}, {"bos_token_id", nullptr}, {"torch_dtype", "float32"}};
  ModelConfig cfg = ModelConfig::from_hf_json(config, "tiny config");
  torch::manual_seed(0);
  Transformer model(cfg);
  {
    // HF-style init (normal(0, 0.02), unit norms, zero biases): a near-uniform initial policy, so
    // every group holds varied completions. LibTorch's default embedding init (normal(0, 1)),
    // tied to the lm_head, would give a peaked, almost deterministic policy.
    torch::NoGradGuard ng;
    for (auto& p : model->named_parameters()) {
      if (p.key().find("norm") != std::string::npos) p.value().fill_(1.0);
      else if (p.key().find("bias") != std::string::npos) p.value().zero_();
      else p.value().normal_(0.0, 0.02);
    }
  }
  SaveOptions save;
  save.tokenizer_dir = tok_dir;
  save_model(model, cfg, dir, save);
  return dir;
}

// Share of 'a' in the completion: a reward the policy can raise token by token.
class LetterAReward : public rewards::Reward {
 public:
  rewards::RewardOutput score_one(const rewards::RewardInput& in) const override {
    rewards::RewardOutput out;
    double n = 0, a = 0;
    for (char c : in.completion) n += 1, a += c == 'a';
    out.score = n > 0 ? a / n : 0.0;
    return out;
  }
};

inline GrpoOptions tiny_options() {
  GrpoOptions o;
  o.prompts_per_step = 4;
  o.group_size = 8;
  o.micro_batch_size = 16;
  o.max_completion_length = 6;
  o.lr = 1e-2;
  o.max_grad_norm = 1.0;
  o.log_samples_every = 2;
  rewards::RewardEntry entry;
  entry.label = "accuracy";
  entry.name = "letter_a";
  entry.reward = std::make_shared<LetterAReward>();
  o.rewards.add(entry);
  return o;
}

// tiny_options() scoring with `reward` alone, under the label "accuracy".
inline GrpoOptions tiny_options_with(std::shared_ptr<rewards::Reward> reward, const std::string& name,
                                     double error_score = 0.0) {
  GrpoOptions o = tiny_options();
  rewards::RewardEntry entry;
  entry.label = "accuracy";
  entry.name = name;
  entry.error_score = error_score;
  entry.reward = std::move(reward);
  o.rewards = rewards::RewardSet();
  o.rewards.add(entry);
  return o;
}

inline GrpoInputs tiny_inputs(const std::string& model_dir) {
  GrpoInputs in;
  in.model_dir = model_dir;
  std::vector<json> records;
  for (const char* p : {"bcd", "ef", "ghij", "klm", "nob", "cde"}) records.push_back({{"prompt", p}});
  in.prompts = shuffled_records(records, 5);
  return in;
}

inline std::vector<json> read_metrics(const std::string& run_dir) {
  std::vector<json> out;
  for_each_jsonl(run_dir + "/metrics.jsonl", [&](const json& rec, int) { out.push_back(rec); });
  return out;
}

using test::fresh_dir;

// Largest |a - b| over the parameters of two saved models (HF directories).
inline double max_param_diff(const std::string& a, const std::string& b) {
  Transformer x = load_model(a, nullptr, torch::kCPU, torch::kFloat32);
  Transformer y = load_model(b, nullptr, torch::kCPU, torch::kFloat32);
  double d = 0;
  auto px = x->parameters(), py = y->parameters();
  for (size_t i = 0; i < px.size(); ++i) d = std::max(d, (px[i] - py[i]).abs().max().item<double>());
  return d;
}

}  // namespace r1kit::grpo::tiny
