// SFT examples: records -> token ids + a loss mask that is 1 only on the tokens the model should
// learn to produce (the completion, or the assistant turns of a chat), then right-padded batches.
//
//   prompt/completion  {"prompt": "Q:1+2=", "completion": "3<eos>"}   ids = enc(prompt) ++ enc(completion)
//   chat               {"messages": [{"role": "user", ...}, {"role": "assistant", ...}]}
//                      rendered with the tokenizer's chat template (or one named); each assistant turn
//                      (its content and the template's end-of-turn text) is learned, system/user turns
//                      and headers are not (sft/chat_segments.h says exactly how turns are found).
// The EOS token is appended to completions that do not already end with it (chat: only when the
// template writes no end-of-turn text, e.g. the "plain" template).
#pragma once
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"

namespace r1kit {
class ChatTemplate;
class PromptEncoder;
class Tokenizer;
}

namespace r1kit::sft {

struct SftExample {
  std::vector<int64_t> ids;        // the whole sequence
  std::vector<uint8_t> loss_mask;  // same length; 1 = this token is a training target
  std::string where;               // where it came from, for errors (e.g. "train.jsonl:12"); may be empty
};

struct SftFormatOptions {
  std::string format = "auto";                // "auto" (chat when the record has messages_field) |
                                              // "prompt_completion" | "chat"
  std::string prompt_field = "prompt";        // prompt_completion: the prompt text
  std::string completion_field = "completion";  // prompt_completion: the target text
  std::string messages_field = "messages";    // chat: list of {"role", "content"}
  std::string chat_template;                  // chat: template name or "" = the tokenizer's own
  std::string tokenizer_dir;                  // chat: directory holding tokenizer_config.json
  bool append_eos = true;                     // add EOS after the completion / last assistant turn if absent
  int64_t max_length = 0;                     // > 0: truncate longer examples (from the right)
};

// Encodes one record. `where` (e.g. "train.jsonl:12") prefixes errors: missing/ill-typed fields,
// no target tokens. eos_id < 0 disables append_eos. `prompt`, when given, encodes prompt_completion
// prompts (BOS, chat template: model/tokenizer_prompt.h) as generation sees them.
SftExample encode_sft_example(const Tokenizer& tok, const json& record, const SftFormatOptions& opts,
                              int64_t eos_id, const std::string& where, const PromptEncoder* prompt = nullptr);

// The same, with the chat template loaded once (for many records).
class SftEncoder {
 public:
  // `prompt` (optional, must outlive the encoder) encodes prompt_completion prompts.
  SftEncoder(const Tokenizer& tok, SftFormatOptions opts, int64_t eos_id, const PromptEncoder* prompt = nullptr);
  ~SftEncoder();
  SftExample encode(const json& record, const std::string& where) const;
  const SftFormatOptions& options() const { return opts_; }

 private:
  const ChatTemplate& chat_template(const std::string& where) const;
  const Tokenizer& tok_;
  SftFormatOptions opts_;
  int64_t eos_;
  const PromptEncoder* prompt_ = nullptr;
  mutable std::unique_ptr<ChatTemplate> template_;
};

// A right-padded batch for next-token training. Row b's real tokens are ids[b, 0:len_b];
// targets[b, t] = ids[b, t+1] when token t+1 is a target, else -100 (ignored). Packed batches
// (sft/sft_packing.h) hold several examples per row, told apart by `segments`.
struct SftBatch {
  torch::Tensor input_ids;  // [B, T] int64 (padded with pad_id)
  torch::Tensor positions;  // [B, T] int64 0..T-1 (packed: restarting at 0 with every example)
  torch::Tensor targets;    // [B, T] int64, -100 where no loss
  torch::Tensor segments;   // packed: [B, T] int64, equal = one example; undefined = one example per row
  int64_t num_target_tokens = 0;
  int64_t num_tokens = 0;   // real (not padding) tokens
  // Unpacked rows whose first shared_prefix tokens (and positions) are the same in every row, none
  // of them a target (mark_shared_prefix): the loss runs those once (Transformer::forward_shared_prefix)
  // where the fused CPU training ops run.
  int64_t shared_prefix = 0;
};

SftBatch collate_sft(const std::vector<SftExample>& examples, int64_t pad_id);

// The batch without its last columns where no row has a target (every example's last token
// predicts nothing): with causal attention no earlier position sees them, so the loss and its
// gradients are unchanged and a step does 1/T less work. Token counts are kept.
SftBatch drop_untargeted_tail(SftBatch batch);

// Sets batch.shared_prefix to the number of leading columns that hold one token and one position
// in every row and no target (a chat template's system prompt, a task's fixed opening), at most
// T - 1; 0 for packed or single-row batches. Their hidden states are the same in every row, so the
// forward can compute them once and let every row attend to them: (B - 1) * shared_prefix fewer
// rows through every layer, the same loss up to float rounding.
void mark_shared_prefix(SftBatch& batch);

}  // namespace r1kit::sft
