#include "recipes/tiny_model.h"

#include <torch/torch.h>

#include <filesystem>

#include "core/check.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "recipes/tiny_task.h"

namespace r1kit::recipes {

TinyModelOptions read_tiny_model_options(ConfigNode& node) {
  TinyModelOptions o;
  node.read("hidden_size", o.hidden_size);
  node.read("num_hidden_layers", o.num_hidden_layers);
  node.read("num_attention_heads", o.num_attention_heads);
  node.read("num_key_value_heads", o.num_key_value_heads);
  node.read("intermediate_size", o.intermediate_size);
  node.read("max_position_embeddings", o.max_position_embeddings);
  node.read("rope_theta", o.rope_theta);
  node.read("init_std", o.init_std);
  node.finish();
  for (auto [key, v] : {std::pair<const char*, int64_t>{"hidden_size", o.hidden_size},
                        {"num_hidden_layers", o.num_hidden_layers},
                        {"num_attention_heads", o.num_attention_heads},
                        {"num_key_value_heads", o.num_key_value_heads},
                        {"intermediate_size", o.intermediate_size},
                        {"max_position_embeddings", o.max_position_embeddings}})
    if (v <= 0) node.fail(key, "must be positive");
  if (o.hidden_size % o.num_attention_heads != 0) node.fail("hidden_size", "must be a multiple of num_attention_heads");
  if (o.num_attention_heads % o.num_key_value_heads != 0)
    node.fail("num_key_value_heads", "must divide num_attention_heads");
  if ((o.hidden_size / o.num_attention_heads) % 2 != 0) node.fail("hidden_size", "head dimension must be even (RoPE)");
  if (!(o.init_std > 0)) node.fail("init_std", "must be positive");
  return o;
}

void create_tiny_model(const TinyModelOptions& opts, uint64_t seed, const std::string& dir) {
  // 1. The tokenizer, written next to the model and read back through the normal Tokenizer class.
  const std::string tok_dir = dir + ".tokenizer.tmp";
  std::filesystem::remove_all(tok_dir);
  write_tiny_tokenizer(tok_dir);
  const Tokenizer tok = Tokenizer::from_file(tok_dir + "/tokenizer.json");
  const int32_t eos = tok.token_to_id("<eos>");
  R1_CHECK(eos >= 0, "tiny tokenizer: <eos> is not a token");

  // 2. A Qwen2 config.json, parsed by the same code that reads downloaded checkpoints.
  const json hf = {
      {"architectures", {"Qwen2ForCausalLM"}},
      {"model_type", "qwen2"},
      {"vocab_size", tok.vocab_size()},
      {"hidden_size", opts.hidden_size},
      {"intermediate_size", opts.intermediate_size},
      {"num_hidden_layers", opts.num_hidden_layers},
      {"num_attention_heads", opts.num_attention_heads},
      {"num_key_value_heads", opts.num_key_value_heads},
      {"max_position_embeddings", opts.max_position_embeddings},
      {"rms_norm_eps", 1e-6},
      {"rope_theta", opts.rope_theta},
      {"tie_word_embeddings", true},
      {"hidden_act", "silu"},
      {"eos_token_id", eos},
      {"bos_token_id", eos},
      {"torch_dtype", "float32"},
      {"use_sliding_window", false},
  };
  ModelConfig cfg = ModelConfig::from_hf_json(hf, dir + "/config.json");

  // 3. Random init as transformers' Qwen2 _init_weights: N(0, std) weights and embeddings, zero
  //    biases, unit RMSNorm weights.
  torch::manual_seed(seed);
  Transformer model(cfg);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
      const std::string& name = p.key();
      if (name.find("norm") != std::string::npos) p.value().fill_(1.0);
      else if (name.size() >= 4 && name.compare(name.size() - 4, 4, "bias") == 0) p.value().zero_();
      else p.value().normal_(0.0, opts.init_std);
    }
  }
  SaveOptions save;
  save.tokenizer_dir = tok_dir;
  save_model(model, cfg, dir, save);
  std::filesystem::remove_all(tok_dir);
}

}  // namespace r1kit::recipes
