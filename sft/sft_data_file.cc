#include "sft/sft_data_file.h"

#include <algorithm>
#include <mutex>
#include <numeric>
#include <random>

#include "core/check.h"
#include "core/fs.h"

namespace r1kit::sft {

void SftDataset::add_jsonl(const std::string& path, const SftEncoder& encoder) {
  R1_CHECK(path_exists(path), path, ": SFT data file not found");
  const size_t before = examples_->size();
  // for_each_jsonl prefixes errors (malformed JSON, missing fields) with "path:line: ".
  for_each_jsonl(path, [&](const json& rec, int line) {
    examples_->push_back(encoder.encode(rec, "record"));
    examples_->back().where = path + ":" + std::to_string(line);  // names it in later errors (packing)
  });
  R1_CHECK(examples_->size() > before, path, ": no records");
}

int64_t SftDataset::num_target_tokens() const {
  int64_t n = 0;
  for (const auto& e : *examples_)
    for (size_t t = 1; t < e.loss_mask.size(); ++t) n += e.loss_mask[t];
  return n;
}

SftBatchSource SftDataset::source(uint64_t seed) const {
  R1_CHECK(!examples_->empty(), "SFT dataset is empty");
  struct Epoch {
    std::mutex mu;
    int64_t index = -1;
    std::vector<size_t> order;
  };
  auto examples = examples_;
  auto cache = std::make_shared<Epoch>();
  return [examples, cache, seed](int64_t step, int64_t n) {
    const auto size = static_cast<int64_t>(examples->size());
    std::vector<SftExample> out;
    std::lock_guard<std::mutex> lock(cache->mu);
    for (int64_t pos = step * n; pos < step * n + n; ++pos) {
      const int64_t epoch = pos / size;
      if (cache->index != epoch) {
        cache->order.resize(examples->size());
        std::iota(cache->order.begin(), cache->order.end(), size_t{0});
        std::seed_seq seq{uint32_t(seed), uint32_t(seed >> 32), uint32_t(epoch), uint32_t(epoch >> 32), 0x5f7u};
        std::mt19937_64 rng(seq);
        std::shuffle(cache->order.begin(), cache->order.end(), rng);
        cache->index = epoch;
      }
      out.push_back((*examples)[cache->order[pos % size]]);
    }
    return out;
  };
}

}  // namespace r1kit::sft
