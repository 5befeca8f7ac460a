#include "model/tokenizer_prompt.h"

#include <algorithm>
#include <filesystem>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"

namespace r1kit {
namespace {

// transformers (4.x) classes whose post-processor is rebuilt from add_bos_token / add_eos_token.
bool rebuilds_post_processor(const std::string& cls) {
  for (const char* c : {"LlamaTokenizer", "CodeLlamaTokenizer", "GemmaTokenizer"})
    if (cls == c || cls == std::string(c) + "Fast") return true;
  return false;
}

// bos_token is a string or an AddedToken object {"content": ...}.
std::string token_content(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

}  // namespace

PromptEncoder::PromptEncoder(const Tokenizer& tokenizer, const std::string& tokenizer_dir, const PromptFormat& format)
    : tokenizer_(&tokenizer), format_(format) {
  const std::string config_path = (std::filesystem::path(tokenizer_dir) / "tokenizer_config.json").string();
  json config = json::object();
  if (!tokenizer_dir.empty() && path_exists(config_path)) {
    config = parse_json(read_file(config_path), config_path);
    R1_CHECK(config.is_object(), config_path, ": must be a JSON object");
  }
  if (format_.chat) {
    template_ = format_.chat_template.empty() ? ChatTemplate::from_tokenizer_config(config_path)
                                              : ChatTemplate::by_name(format_.chat_template);
    return;
  }
  const std::string cls = config.value("tokenizer_class", "");
  llama_class_ = rebuilds_post_processor(cls);
  if (llama_class_) {
    const json flag = config.value("add_bos_token", json(true));
    R1_CHECK(flag.is_boolean(), config_path, ": add_bos_token must be true or false");
    const std::string bos = config.contains("bos_token") ? token_content(config["bos_token"]) : "";
    bos_id_ = bos.empty() ? -1 : tokenizer.token_to_id(bos);
    R1_CHECK(!(flag.get<bool>() && !bos.empty() && bos_id_ < 0), config_path, ": bos_token '", bos,
             "' is not in the tokenizer's vocabulary");
    add_bos_ = flag.get<bool>() && bos_id_ >= 0;
  } else {
    // What tokenizer.json's post-processor puts before a sequence (the BOS of a TemplateProcessing).
    const std::vector<int32_t> plain = tokenizer.encode("a"), with = tokenizer.encode("a", true);
    auto at = std::search(with.begin(), with.end(), plain.begin(), plain.end());
    if (!plain.empty() && at != with.end() && at != with.begin()) {
      bos_id_ = with.front();
      add_bos_ = true;
    }
  }
}

std::string PromptEncoder::render(const std::string& prompt) const {
  if (!format_.chat) return prompt;
  std::vector<ChatMessage> messages;
  if (!format_.system_prompt.empty()) messages.push_back({"system", format_.system_prompt});
  messages.push_back({"user", prompt});
  ChatOptions options;
  options.add_generation_prompt = true;
  options.think_prefill = format_.think_prefill;
  return template_.render(messages, options);
}

std::vector<int32_t> PromptEncoder::encode(const std::string& prompt) const {
  std::vector<int32_t> ids = tokenizer_->encode(render(prompt));  // special tokens in the text are matched
  if (add_bos_ && (ids.empty() || ids.front() != bos_id_)) ids.insert(ids.begin(), bos_id_);
  return ids;
}

}  // namespace r1kit
