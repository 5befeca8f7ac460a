// KvCache: per-layer key/value tensors for incremental decoding, owned by the caller (the rollout
// engine), not by the model. Row r of the cache holds one sequence; rows advance independently,
// so one batched decode step can serve sequences of different lengths.
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "model/model_config.h"

namespace r1kit {

class KvCache {
 public:
  // Allocates [n_rows, n_kv_heads, max_len, head_dim] K and V per layer (zeros), all lengths 0.
  KvCache(const ModelConfig& cfg, int64_t n_rows, int64_t max_len, torch::Dtype dtype, torch::Device device);

  int64_t n_rows() const { return n_rows_; }
  int64_t max_len() const { return max_len_; }
  int64_t n_layers() const { return static_cast<int64_t>(k_.size()); }
  torch::Dtype dtype() const { return dtype_; }
  torch::Device device() const { return device_; }

  int64_t length(int64_t row) const;              // tokens stored in that row
  const std::vector<int64_t>& lengths() const { return lengths_; }
  void reset_row(int64_t row);                    // length 0 (K/V left in place, masked out)
  void reset();                                   // every row length 0
  // Truncates (or, for a value previously written, restores) a row's length; 0 <= len <= max_len.
  void set_length(int64_t row, int64_t len);
  // Prefix sharing: copies K/V slots [0, length(src)) of every layer and the length to each dst row.
  void copy_row(int64_t src_row, const std::vector<int64_t>& dst_rows);

  torch::Tensor& k(int64_t layer);  // [n_rows, n_kv_heads, max_len, head_dim]
  torch::Tensor& v(int64_t layer);  // [n_rows, n_kv_heads, max_len, head_dim]

  // Bytes held by K and V over all layers.
  int64_t nbytes() const;

 private:
  friend class TransformerImpl;
  void check_row(int64_t row) const;

  int64_t n_rows_, max_len_;
  torch::Dtype dtype_;
  torch::Device device_;
  std::vector<torch::Tensor> k_, v_;
  std::vector<int64_t> lengths_;
};

}  // namespace r1kit
