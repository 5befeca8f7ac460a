#include "sft/sft_dataset.h"

#include <torch/torch.h>

#include <algorithm>

#include "core/check.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"
#include "model/tokenizer_prompt.h"
#include "sft/chat_segments.h"

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

SftEncoder::SftEncoder(const Tokenizer& tok, SftFormatOptions opts, int64_t eos_id, const PromptEncoder* prompt)
    : tok_(tok), opts_(std::move(opts)), eos_(eos_id), prompt_(prompt) {
  R1_CHECK(opts_.format == "auto" || opts_.format == "prompt_completion" || opts_.format == "chat",
           "unknown SFT format '", opts_.format, "' (auto, prompt_completion, chat)");
}

SftEncoder::~SftEncoder() = default;

const ChatTemplate& SftEncoder::chat_template(const std::string& where) const {
  if (!template_) {
    try {
      template_ = std::make_unique<ChatTemplate>(opts_.chat_template.empty()
                                                     ? ChatTemplate::from_tokenizer_config(opts_.tokenizer_dir)
                                                     : ChatTemplate::by_name(opts_.chat_template));
    } catch (const Error& e) {
      R1_FAIL(where, ": chat-format record needs a chat template (set chat_template, or give the tokenizer a ",
              "chat_template): ", e.what());
    }
  }
  return *template_;
}

SftExample SftEncoder::encode(const json& record, const std::string& where) const {
  SftExample ex;
  ex.where = where;
  R1_CHECK(record.is_object(), where, ": expected a JSON object, got ", record.type_name());
  const bool chat = opts_.format == "chat" || (opts_.format == "auto" && record.contains(opts_.messages_field));
  bool eot_written = false;
  if (!chat) {
    // Prompt and completion are encoded separately so the mask boundary is exact; this is also how
    // the rollout engine sees them (prompt ids, then generated ids).
    const std::string& prompt_text = string_field(record, opts_.prompt_field, where);
    append(ex, prompt_ ? prompt_->encode(prompt_text) : tok_.encode(prompt_text), 0);
    append(ex, tok_.encode(string_field(record, opts_.completion_field, where)), 1);
  } else {
    R1_CHECK(record.contains(opts_.messages_field), where, ": missing field '", opts_.messages_field, "'");
    const std::vector<ChatMessage> msgs = chat_messages_from_json(record.at(opts_.messages_field), where, opts_.messages_field);
    const ChatTemplate& tmpl = chat_template(where);
    std::vector<TextSegment> segs;
    try {
      segs = chat_training_segments(tmpl, msgs);
    } catch (const Error& e) {
      R1_FAIL(where, ": ", e.what());
    }
    // The last learned segment ends with the template's end-of-turn text (empty for "plain").
    eot_written = tmpl.family() != ChatFamily::kPlain;
    for (const auto& seg : segs) append(ex, tok_.encode(seg.text), seg.learned ? 1 : 0);
  }
  if (opts_.append_eos && eos_ >= 0 && !eot_written && (ex.ids.empty() || ex.ids.back() != eos_)) {
    ex.ids.push_back(eos_);
    ex.loss_mask.push_back(1);
  }
  if (opts_.max_length > 0 && static_cast<int64_t>(ex.ids.size()) > opts_.max_length) {
    ex.ids.resize(opts_.max_length);
    ex.loss_mask.resize(opts_.max_length);
  }
  // Token 0 is never a target (nothing predicts it); at least one later token must be.
  R1_CHECK(std::any_of(ex.loss_mask.begin() + std::min<size_t>(1, ex.loss_mask.size()), ex.loss_mask.end(),
                       [](uint8_t m) { return m != 0; }),
           where, ": example has no target tokens (empty completion, or truncated by max_length=",
           opts_.max_length, ")");
  return ex;
}

SftExample encode_sft_example(const Tokenizer& tok, const json& record, const SftFormatOptions& opts,
                              int64_t eos_id, const std::string& where, const PromptEncoder* prompt) {
  return SftEncoder(tok, opts, eos_id, prompt).encode(record, where);
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
    batch.num_tokens += static_cast<int64_t>(e.ids.size());
  }
  batch.positions = torch::arange(T, torch::kInt64).unsqueeze(0).expand({B, T}).contiguous();
  return batch;
}

SftBatch drop_untargeted_tail(SftBatch batch) {
  const int64_t T = batch.targets.size(1);
  const torch::Tensor targeted = batch.targets.ne(-100).any(0).nonzero();  // [n, 1] columns with a target
  if (targeted.numel() == 0) return batch;
  const int64_t keep = targeted[-1][0].item<int64_t>() + 1;
  if (keep == T) return batch;
  for (torch::Tensor* t : {&batch.input_ids, &batch.positions, &batch.targets, &batch.segments})
    if (t->defined()) *t = t->slice(1, 0, keep).contiguous();
  return batch;
}

void mark_shared_prefix(SftBatch& batch) {
  batch.shared_prefix = 0;
  const int64_t B = batch.input_ids.size(0), T = batch.input_ids.size(1);
  if (batch.segments.defined() || B < 2 || T < 2) return;
  // Columns whose token and position equal row 0's in every row, and that no row learns.
  const torch::Tensor same = batch.input_ids.eq(batch.input_ids.narrow(0, 0, 1)).all(0)
                                 .logical_and(batch.positions.eq(batch.positions.narrow(0, 0, 1)).all(0))
                                 .logical_and(batch.targets.eq(-100).all(0));
  const torch::Tensor breaks = same.logical_not().nonzero();
  const int64_t p = breaks.numel() > 0 ? breaks[0][0].item<int64_t>() : T;
  batch.shared_prefix = std::min(p, T - 1);
}

}  // namespace r1kit::sft
