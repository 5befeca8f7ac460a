#include "model/kv_cache.h"

#include <torch/torch.h>

#include "core/check.h"

namespace r1kit {

KvCache::KvCache(const ModelConfig& cfg, int64_t n_rows, int64_t max_len, torch::Dtype dtype, torch::Device device)
    : n_rows_(n_rows), max_len_(max_len), dtype_(dtype), device_(device), lengths_(n_rows, 0) {
  R1_CHECK(n_rows > 0 && max_len > 0, "KvCache: n_rows (", n_rows, ") and max_len (", max_len, ") must be positive");
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  for (int64_t l = 0; l < cfg.num_hidden_layers; ++l) {
    k_.push_back(torch::zeros({n_rows, cfg.num_key_value_heads, max_len, cfg.head_dim}, opts));
    v_.push_back(torch::zeros({n_rows, cfg.num_key_value_heads, max_len, cfg.head_dim}, opts));
  }
}

void KvCache::check_row(int64_t row) const {
  R1_CHECK(row >= 0 && row < n_rows_, "KvCache: row ", row, " out of range [0, ", n_rows_, ")");
}

int64_t KvCache::length(int64_t row) const {
  check_row(row);
  return lengths_[row];
}

void KvCache::reset_row(int64_t row) {
  check_row(row);
  lengths_[row] = 0;
}

void KvCache::reset() { std::fill(lengths_.begin(), lengths_.end(), 0); }

void KvCache::set_length(int64_t row, int64_t len) {
  check_row(row);
  R1_CHECK(len >= 0 && len <= max_len_, "KvCache: length ", len, " out of range [0, ", max_len_, "]");
  lengths_[row] = len;
}

void KvCache::copy_row(int64_t src_row, const std::vector<int64_t>& dst_rows) {
  check_row(src_row);
  const int64_t len = lengths_[src_row];
  std::vector<int64_t> dst;
  for (int64_t r : dst_rows) {
    check_row(r);
    if (r != src_row) dst.push_back(r);
  }
  if (dst.empty()) return;
  torch::NoGradGuard no_grad;
  if (len > 0) {
    auto idx = torch::tensor(dst, torch::TensorOptions().dtype(torch::kLong)).to(device_);
    for (size_t l = 0; l < k_.size(); ++l) {
      for (torch::Tensor* t : {&k_[l], &v_[l]}) {
        // [n_kv, len, D] of the source, broadcast into every destination row. clone(), not
        // contiguous(): with one KV head and one destination the view is already contiguous and
        // would alias the tensor being written.
        auto src = t->select(0, src_row).narrow(1, 0, len);
        t->narrow(2, 0, len).index_copy_(0, idx, src.unsqueeze(0).expand({int64_t(dst.size()), -1, -1, -1}).clone());
      }
    }
  }
  for (int64_t r : dst) lengths_[r] = len;
}

torch::Tensor& KvCache::k(int64_t layer) {
  R1_CHECK(layer >= 0 && layer < n_layers(), "KvCache: layer ", layer, " out of range");
  return k_[layer];
}

torch::Tensor& KvCache::v(int64_t layer) {
  R1_CHECK(layer >= 0 && layer < n_layers(), "KvCache: layer ", layer, " out of range");
  return v_[layer];
}

int64_t KvCache::nbytes() const {
  int64_t n = 0;
  for (size_t l = 0; l < k_.size(); ++l) n += k_[l].nbytes() + v_[l].nbytes();
  return n;
}

}  // namespace r1kit
