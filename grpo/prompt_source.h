// Where the trainer's prompts come from: an endless, deterministic stream of dataset records.
// The trainer only tracks its position in the stream (saved in checkpoints), so a resumed run
// reads exactly the records an uninterrupted run would have read.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/json.h"

namespace r1kit::grpo {

// Returns records first .. first+n-1 of the stream. Each record holds the prompt text (field
// GrpoOptions::prompt_field) and whatever the rewards need ("answer", "tests", ...).
using PromptSource = std::function<std::vector<json>(int64_t first, int64_t n)>;

// A finite record list repeated forever, reshuffled every epoch: epoch e is a permutation drawn
// from (seed, e) alone, so position p always maps to the same record.
PromptSource shuffled_records(std::vector<json> records, uint64_t seed);

}  // namespace r1kit::grpo
