// Prompts for generate-and-score jobs from a JSONL file (or records in memory): each record gives
// a "prompt" string (raw text the model continues) or a "messages" conversation (rendered with the
// chat template, ready for the assistant turn), an optional "id", and any fields the rewards read
// ("answer", "tests", ...). Errors name the file and line: malformed JSON, neither field, a
// conversation ending with an assistant turn, an empty prompt, a repeated id.
//
//   {"id": "gsm8k-17", "prompt": "Q: ... A:", "answer": "42"}
//   {"messages": [{"role": "user", "content": "What is 6*7?"}], "answer": "42"}
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/json.h"
#include "datagen/generate_and_score.h"
#include "model/chat_template.h"

namespace r1kit {
class Tokenizer;
}

namespace r1kit::datagen {

struct PromptFileOptions {
  std::string prompt_field = "prompt";      // raw prompt text
  std::string messages_field = "messages";  // or a conversation
  std::string id_field = "id";              // string or number; default: the record's 0-based index
  bool chat = false;                        // render "prompt" strings as one user turn with the template
  std::string tokenizer_dir;                // where tokenizer_config.json (the chat template) lives
  std::string chat_template;                // template name ("" = the tokenizer's own)
  ChatOptions chat_options;                 // add_generation_prompt is forced on
};

// Turns records into PromptItems (id, rendered text, token ids, the record). `where` names the
// record in errors ("" = "record <index>").
class PromptBuilder {
 public:
  PromptBuilder(const Tokenizer& tok, PromptFileOptions options);
  PromptItem build(const json& record, int64_t index, const std::string& where) const;
  // The conversation a record's prompt stands for (its messages, or one user turn with the raw
  // prompt), to which an assistant turn is appended in chat-format outputs.
  json messages_of(const json& record) const;

 private:
  const ChatTemplate& chat_template() const;
  const Tokenizer& tok_;
  PromptFileOptions opts_;
  mutable std::unique_ptr<ChatTemplate> template_;
};

// Reads every record of a JSONL file; ids must be unique (Error naming both lines otherwise).
std::vector<PromptItem> read_prompt_file(const std::string& path, const Tokenizer& tok, const PromptFileOptions& options);

}  // namespace r1kit::datagen
