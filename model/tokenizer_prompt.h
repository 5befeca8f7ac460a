// Prompt text -> the token ids a model continues, the way Hugging Face feeds that model.
//
//   plain (base models): tokenizer(text) as transformers does it: tokenizer.json's post-processor adds
//     BOS (e.g. DeepSeek-R1-Distill's TemplateProcessing); tokenizers of the Llama classes
//     (tokenizer_class LlamaTokenizer[Fast], CodeLlamaTokenizer[Fast], GemmaTokenizer[Fast]) instead
//     follow tokenizer_config.json's "add_bos_token" (default true), as transformers 4.x rebuilds
//     their post-processor from it (DeepSeek-V3 relies on this). Qwen adds nothing. No EOS is ever
//     appended to a prompt, and a text that already starts with BOS does not get a second one.
//   chat (chat-tuned models): the text becomes the user turn (after an optional system turn) of the
//     model's chat template with the generation prompt, encoded without special tokens, like
//     apply_chat_template(..., add_generation_prompt=True, tokenize=True): the template writes BOS
//     itself where the family has one (Llama 3, DeepSeek), Qwen's has none.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/chat_template.h"
#include "model/tokenizer.h"

namespace r1kit {

struct PromptFormat {
  bool chat = false;           // render through the chat template (chat-tuned models)
  std::string system_prompt;   // chat: a system turn before the prompt ("" = none, the template's default)
  std::string chat_template;   // chat: a template name (ChatTemplate::names()); "" = tokenizer_config.json's
  int think_prefill = -1;      // chat: DeepSeek-R1 "<think>\n" after the generation prompt (-1: the template's)
};

class PromptEncoder {
 public:
  // `tokenizer` must outlive the encoder. `tokenizer_dir` holds tokenizer_config.json (optional for
  // plain prompts; chat needs its chat_template unless format.chat_template names one). Errors name
  // the file and field.
  PromptEncoder(const Tokenizer& tokenizer, const std::string& tokenizer_dir, const PromptFormat& format = {});

  // The text that is tokenized: the chat rendering, or `prompt` itself.
  std::string render(const std::string& prompt) const;
  std::vector<int32_t> encode(const std::string& prompt) const;

  bool chat() const { return format_.chat; }
  // Plain prompts start with BOS (bos_id() >= 0).
  bool adds_bos() const { return add_bos_; }
  int32_t bos_id() const { return bos_id_; }  // -1: the tokenizer has no BOS token

 private:
  const Tokenizer* tokenizer_;
  PromptFormat format_;
  ChatTemplate template_;
  bool llama_class_ = false;  // BOS from add_bos_token instead of the post-processor
  bool add_bos_ = false;
  int32_t bos_id_ = -1;
};

}  // namespace r1kit
