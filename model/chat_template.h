// Chat templates of the supported model families, written as code (no Jinja interpreter). Each
// renders exactly what the Hugging Face Jinja template of that family renders for system / user /
// assistant / tool turns (tests compare with goldens rendered by jinja2 the way transformers
// does). The family is recognised from tokenizer_config.json's "chat_template" or chosen by name.
#pragma once
#include <string>
#include <vector>

#include "core/json.h"

namespace r1kit {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant" or "tool"
  std::string content;
};

// A JSON `messages` list ([{"role", "content"}, ...], the HF/TRL convention) as ChatMessages. Errors
// name `where` and `field` ("train.jsonl:3: messages[1] must be {...}").
std::vector<ChatMessage> chat_messages_from_json(const json& messages, const std::string& where,
                                                 const std::string& field = "messages");

struct ChatOptions {
  bool add_generation_prompt = false;  // end with the assistant header, ready to generate
  // DeepSeek-R1: write "<think>\n" after the generation prompt, as newer R1 revisions do.
  // Unset (-1) = what the template itself does.
  int think_prefill = -1;
  bool enable_thinking = true;         // Qwen3: false pre-fills an empty "<think>\n\n</think>\n\n"
  std::string date_string = "26 Jul 2024";  // Llama 3.1 "Today Date:" line (the template's default)
};

enum class ChatFamily {
  kQwen25,      // ChatML with a default system prompt (Qwen2/2.5, Qwen2.5-Math ...)
  kQwen3,       // ChatML with <think> handling of assistant turns
  kLlama3,      // Llama 3 headers, BOS before the first message
  kLlama31,     // Llama 3.1+: BOS, system header with knowledge/today dates
  kDeepSeekR1,  // <｜User｜>/<｜Assistant｜>, last system prompt, thinking stripped from past turns
  kDeepSeekV3,  // as R1 but system prompts joined by "\n\n" and no thinking stripped
  kPlain,       // the contents concatenated, no markers (models trained on raw prompt text, e.g. the tiny task)
};

// The Jinja text of the "plain" template (written into tokenizer_config.json of such models).
inline constexpr const char* kPlainChatTemplate = "{% for message in messages %}{{ message['content'] }}{% endfor %}";

class ChatTemplate {
 public:
  // Names: "qwen2.5", "qwen3", "llama3", "llama3.1", "deepseek-r1", "deepseek-v3", "plain".
  static ChatTemplate by_name(const std::string& name);
  // Recognises the family of a Jinja chat_template text; `where` is named in errors.
  static ChatTemplate from_jinja(const std::string& chat_template, const std::string& where);
  // Reads tokenizer_config.json (or DIR/tokenizer_config.json): chat_template, bos_token.
  static ChatTemplate from_tokenizer_config(const std::string& path);
  // Names accepted by by_name, for help texts.
  static std::vector<std::string> names();

  // Throws Error on an empty conversation or a role the family does not know.
  std::string render(const std::vector<ChatMessage>& messages, const ChatOptions& options = {}) const;

  ChatFamily family() const { return family_; }
  const std::string& name() const { return name_; }
  const std::string& bos_token() const { return bos_; }
  void set_bos_token(const std::string& bos) { bos_ = bos; }

 private:
  std::string render_qwen(const std::vector<ChatMessage>& m, const ChatOptions& o) const;
  std::string render_llama3(const std::vector<ChatMessage>& m, const ChatOptions& o) const;
  std::string render_llama31(const std::vector<ChatMessage>& m, const ChatOptions& o) const;
  std::string render_deepseek(const std::vector<ChatMessage>& m, const ChatOptions& o) const;

  ChatFamily family_ = ChatFamily::kQwen25;
  std::string name_;
  std::string bos_;
  std::string default_system_;              // Qwen2.5: used when the first message is not "system"
  bool generation_prompt_always_ = false;   // Llama 3 templates that end with the header unconditionally
  bool think_prefill_ = false;              // DeepSeek-R1 revisions that end with "<think>\n"
};

// Convenience: template from tokenizer_config.json in `tokenizer_dir` (or by name when
// `template_name` is not empty).
std::string render_chat(const std::vector<ChatMessage>& messages, const std::string& tokenizer_dir,
                        const ChatOptions& options = {}, const std::string& template_name = "");

}  // namespace r1kit
