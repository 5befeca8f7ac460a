// A fresh Qwen2-shaped model for the tiny recipe: random init (HF's normal(0, init_std) for weights,
// zero biases, unit norms), r1kit's tiny tokenizer, saved as a normal HF checkpoint directory so
// every later stage loads it exactly like a downloaded model.
#pragma once
#include <cstdint>
#include <string>

#include "core/config.h"

namespace r1kit::recipes {

struct TinyModelOptions {
  int64_t hidden_size = 192;              // d_model
  int64_t num_hidden_layers = 4;
  int64_t num_attention_heads = 4;
  int64_t num_key_value_heads = 4;        // < heads: grouped-query attention
  int64_t intermediate_size = 512;        // SwiGLU width
  int64_t max_position_embeddings = 256;
  double rope_theta = 10000.0;
  double init_std = 0.02;                 // std of the normal init of weights and embeddings
};

// Reads the recipe's `model.create` section (finish() included).
TinyModelOptions read_tiny_model_options(ConfigNode& node);

// Writes tokenizer files and a randomly initialised model (seeded) into `dir` (atomically).
void create_tiny_model(const TinyModelOptions& opts, uint64_t seed, const std::string& dir);

}  // namespace r1kit::recipes
