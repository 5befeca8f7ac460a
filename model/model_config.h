// ModelConfig: the decoder hyper-parameters read from a Hugging Face config.json (model_type qwen2 or
// llama: Qwen2/2.5, DeepSeek-R1-Distill-Qwen, Llama-3.x, DeepSeek-R1-Distill-Llama) and written back
// the way transformers' save_pretrained writes them.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"

namespace r1kit {

// RoPE frequency scaling ("rope_scaling" / "rope_parameters" in config.json).
struct RopeScaling {
  std::string type = "default";                     // "default" | "linear" | "llama3"
  double factor = 1.0;                              // linear and llama3: frequency divisor
  double low_freq_factor = 1.0;                     // llama3 only
  double high_freq_factor = 4.0;                    // llama3 only
  int64_t original_max_position_embeddings = 8192;  // llama3 only
};

struct ModelConfig {
  std::string model_type;                 // "qwen2" | "llama"
  std::string architecture;               // config.architectures[0], e.g. "Qwen2ForCausalLM"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;        // == num_attention_heads when absent (multi-head attention)
  int64_t head_dim = 0;                   // "head_dim" key, else hidden_size / num_attention_heads
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;       // lm_head shares embed_tokens.weight
  bool attention_bias = false;            // q/k/v biases (always true for qwen2)
  RopeScaling rope_scaling;
  std::vector<int64_t> eos_token_ids;     // config.json eos_token_id (int or list), plus
                                          // generation_config.json's when loaded by checkpoint.h
  int64_t bos_token_id = -1;              // -1: none
  std::string torch_dtype = "float32";    // dtype the checkpoint was stored in
  json source;                            // the parsed config.json (unknown keys kept for saving)

  // Parses a HF config.json object. `where` (usually the file path) prefixes every error, which
  // also names the key: missing/invalid keys, unknown model_type, unsupported rope scaling.
  static ModelConfig from_hf_json(const json& j, const std::string& where);
  // Reads and parses a config.json file.
  static ModelConfig from_file(const std::string& path);

  // The config.json transformers / vLLM / llama.cpp's converter load: the source keys with every
  // field above written over them (sorted keys, as save_pretrained writes).
  json to_hf_json() const;

  // Query heads per KV head (grouped-query attention).
  int64_t n_rep() const { return num_attention_heads / num_key_value_heads; }
  // Number of parameters (embeddings and lm_head counted once when tied).
  int64_t num_parameters() const;
};

}  // namespace r1kit
