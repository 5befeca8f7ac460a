// SFT examples from JSONL files (e.g. the data.jsonl of rejection sampling or distillation): every
// record is encoded once up front (errors name the file and line), then served as an endless
// stream of epochs, each a seeded permutation, so the examples of a step are a pure function of
// (seed, step) as run_sft's resume needs.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sft/sft_dataset.h"
#include "sft/sft_trainer.h"

namespace r1kit::sft {

class SftDataset {
 public:
  SftDataset() : examples_(std::make_shared<std::vector<SftExample>>()) {}
  // Appends every record of a JSONL file (at least one).
  void add_jsonl(const std::string& path, const SftEncoder& encoder);
  void add(SftExample ex) { examples_->push_back(std::move(ex)); }
  size_t size() const { return examples_->size(); }
  const SftExample& operator[](size_t i) const { return (*examples_)[i]; }
  int64_t num_target_tokens() const;

  // Examples of step s: positions s*n .. s*n+n-1 of the stream; epoch e is the permutation of the
  // examples drawn with (seed, e). The source shares the examples (cheap to copy).
  SftBatchSource source(uint64_t seed) const;

 private:
  std::shared_ptr<std::vector<SftExample>> examples_;
};

}  // namespace r1kit::sft
