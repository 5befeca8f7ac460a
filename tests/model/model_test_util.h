// Helpers shared by the decoder tests: fixture paths, temp dirs, tiny random configs.
#pragma once
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "core/check.h"
#include "core/json.h"
#include "model/cpu_kernels.h"
#include "model/model_config.h"
#include "tests/test_util.h"

namespace r1kit::test {

// The message of the r1kit::Error `fn` throws ("" when it throws none).
template <class F>
std::string error_of(F&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A small config (GQA 4 heads / 2 KV heads) for tests that need no fixture.
inline ModelConfig tiny_config(const std::string& model_type = "llama", bool tied = false, int64_t n_kv = 2) {
  json j = {{"model_type", model_type}, {"vocab_size", 97}, {"hidden_size", 32}, {"intermediate_size", 48},
            {"num_hidden_layers", 2}, {"num_attention_heads", 4}, {"num_key_value_heads", n_kv},
            {"max_position_embeddings", 128}, {"rms_norm_eps", 1e-5}, {"rope_theta", 10000.0},
            {"tie_word_embeddings", tied}, {"eos_token_id", 3}, {"bos_token_id", 1}};
  return ModelConfig::from_hf_json(j, "tiny_config");
}

// Max |a - b| over all elements (as double).
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// The k-chunked float32 layout as cpu_kernels.h describes it, written front to back: panels of
// kChunkPanel rows (the last one shorter), in each a piece of kChunkCols columns of every row, row
// after row, then the next piece.
inline torch::Tensor chunked_layout(const torch::Tensor& w) {
  const int64_t N = w.size(0), K = w.size(1);
  auto out = torch::empty({N * K});
  float* dst = out.data_ptr<float>();
  const auto src = w.accessor<float, 2>();
  for (int64_t p0 = 0; p0 < N; p0 += cpu::kChunkPanel)
    for (int64_t c0 = 0; c0 < K; c0 += cpu::kChunkCols)
      for (int64_t r = p0; r < std::min(N, p0 + cpu::kChunkPanel); ++r)
        for (int64_t c = c0; c < std::min(K, c0 + cpu::kChunkCols); ++c) *dst++ = src[r][c];
  return out;
}

}  // namespace r1kit::test
