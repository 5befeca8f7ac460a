#include "sft/sft_dataset.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/check.h"
#include "model/tokenizer.h"
#include "model/tokenizer_prompt.h"

namespace r1kit::sft {
namespace {

const std::string& string_field(const json& record, const std::string& field, const std::string& where) {
  R1_CHECK(record.is_object(), where, ": expected a JSON object, got ", record.type_name());
  R1_CHECK(record.contains(field), where, ": missing field '", field, "'");
  R1_CHECK(record.at(field).is_string(), where, ": field '", field, "' must be a string, got ",
           record.at(field).type_name());
  return record.at(field).get_ref<const std::string&>();
}

void append(SftExample& ex, const std::vector<int32_t>& ids, uint8_t mask) {
  for (int32_t id : ids) {
    ex.ids.push_back(id);
    ex.loss_mask.push_back(mask);
  }
}

}  // namespace

SftExample encode_sft_example(const Tokenizer& tok, const json& record, const SftFormatOptions& opts,
                              int64_t eos_id, const std::string& where, const PromptEncoder* prompt) {
  SftExample ex;
  if (opts.format == "prompt_completion") {
    // Prompt and completion are encoded separately so the mask boundary is exact; this is also how
    // the rollout engine sees them (prompt ids, then generated ids).
    const std::string& prompt_text = string_field(record, opts.prompt_field, where);
    append(ex, prompt ? prompt->encode(prompt_text) : tok.encode(prompt_text), 0);
    append(ex, tok.encode(string_field(record, opts.completion_field, where)), 1);
  } else {
    R1_FAIL(where, ": unknown SFT format '", opts.format, "' (prompt_completion)");
  }
  if (opts.append_eos && eos_id >= 0 && (ex.ids.empty() || ex.ids.back() != eos_id)) {
    ex.ids.push_back(eos_id);
    ex.loss_mask.push_back(1);
  }
  if (opts.max_length > 0 && static_cast<int64_t>(ex.ids.size()) > opts.max_length) {
    ex.ids.resize(opts.max_length);
    ex.loss_mask.resize(opts.max_length);
  }
  // Token 0 is never a target (nothing predicts it); at least one later token must be.
  R1_CHECK(std::any_of(ex.loss_mask.begin() + std::min<size_t>(1, ex.loss_mask.size()), ex.loss_mask.end(),
                       [](uint8_t m) { return m != 0; }),
           where, ": example has no target tokens (empty completion, or truncated by max_length=",
           opts.max_length, ")");
  return ex;
}

SftBatch collate_sft(const std::vector<SftExample>& examples, int64_t pad_id) {
  R1_CHECK(!examples.empty(), "collate_sft: empty batch");
  const int64_t B = examples.size();
  int64_t T = 0;
  for (const auto& e : examples) T = std::max<int64_t>(T, e.ids.size());
  SftBatch batch;
  batch.input_ids = torch::full({B, T}, pad_id, torch::kInt64);
  batch.targets = torch::full({B, T}, -100, torch::kInt64);
  auto ids = batch.input_ids.accessor<int64_t, 2>();
  auto tgt = batch.targets.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& e = examples[b];
    R1_CHECK(e.ids.size() == e.loss_mask.size(), "collate_sft: example ", b, " has ", e.ids.size(), " ids and ",
             e.loss_mask.size(), " mask entries");
    for (size_t t = 0; t < e.ids.size(); ++t) {
      ids[b][t] = e.ids[t];
      if (t + 1 < e.ids.size() && e.loss_mask[t + 1]) {
        tgt[b][t] = e.ids[t + 1];
        ++batch.num_target_tokens;
      }
    }
  }
  batch.positions = torch::arange(T, torch::kInt64).unsqueeze(0).expand({B, T}).contiguous();
  return batch;
}

}  // namespace r1kit::sft
