// `r1kit chat`: renders a conversation with a model family's chat template (recognised from
// tokenizer_config.json, or chosen with --template) and prints the prompt text (or its ids).
//   r1kit chat --tokenizer DIR --messages FILE.json [--add-generation-prompt] [--template NAME]
//              [--think-prefill] [--no-thinking] [--date "26 Jul 2024"] [--ids]
// FILE.json: [{"role": "system"|"user"|"assistant"|"tool", "content": "..."}, ...] or
//            {"messages": [...]}.
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"

namespace {

using namespace r1kit;

struct ChatArgs {
  std::string tokenizer;   // directory with tokenizer_config.json (and tokenizer.json for --ids)
  std::string messages;    // JSON file with the conversation
  std::string template_name;  // family by name instead of tokenizer_config.json
  std::string date;        // Llama 3.1 "Today Date"
  bool add_generation_prompt = false;
  bool think_prefill = false;  // DeepSeek-R1: end with "<think>\n"
  bool no_thinking = false;    // Qwen3: enable_thinking=false
  bool ids = false;            // print token ids instead of text
};

std::vector<ChatMessage> read_messages(const std::string& path) {
  json j = parse_json(read_file(path), path);
  if (j.is_object() && j.contains("messages")) j = j["messages"];
  R1_CHECK(j.is_array(), path, ": expected a JSON array of {\"role\", \"content\"} (or {\"messages\": [...]})");
  std::vector<ChatMessage> m;
  for (size_t i = 0; i < j.size(); ++i) {
    const json& x = j[i];
    R1_CHECK(x.is_object(), path, ": messages[", i, "] must be an object");
    R1_CHECK(x.contains("role") && x["role"].is_string(), path, ": messages[", i, "].role must be a string");
    R1_CHECK(x.contains("content") && x["content"].is_string(), path, ": messages[", i,
             "].content must be a string");
    m.push_back({x["role"].get<std::string>(), x["content"].get<std::string>()});
  }
  return m;
}

int run_chat(const ChatArgs& a) {
  R1_CHECK(!a.tokenizer.empty() || !a.template_name.empty(), "give --tokenizer DIR or --template NAME");
  R1_CHECK(!a.ids || !a.tokenizer.empty(), "--ids needs --tokenizer");
  const ChatTemplate t = a.template_name.empty() ? ChatTemplate::from_tokenizer_config(a.tokenizer)
                                                 : ChatTemplate::by_name(a.template_name);
  ChatOptions o;
  o.add_generation_prompt = a.add_generation_prompt;
  if (a.think_prefill) o.think_prefill = 1;
  o.enable_thinking = !a.no_thinking;
  if (!a.date.empty()) o.date_string = a.date;
  std::vector<ChatMessage> msgs = read_messages(a.messages);
  std::string text;
  try {
    text = t.render(msgs, o);
  } catch (const Error& e) {
    R1_FAIL(a.messages, ": ", e.what());
  }
  if (a.ids) {
    // The template already holds BOS where the family wants it: no post-processor on top.
    const Tokenizer tok = Tokenizer::from_file(a.tokenizer);
    std::cout << dump_line(json(tok.encode(text, false))) << "\n";
  } else {
    std::cout << text;
    std::cout.flush();
  }
  return 0;
}

r1kit::cli::Registrar reg{
    "chat", "render a conversation with a chat template (prints the prompt text or ids)", [](CLI::App& sub) {
      auto a = std::make_shared<ChatArgs>();
      sub.add_option("--tokenizer", a->tokenizer, "directory with tokenizer_config.json (template, BOS)");
      sub.add_option("--messages", a->messages, "JSON file: [{\"role\": ..., \"content\": ...}, ...]")->required();
      sub.add_option("--template", a->template_name,
                     "qwen2.5 | qwen3 | llama3 | llama3.1 | deepseek-r1 | deepseek-v3 (default: from the config)");
      sub.add_flag("--add-generation-prompt", a->add_generation_prompt, "end with the assistant header");
      sub.add_flag("--think-prefill", a->think_prefill, "DeepSeek-R1: write \"<think>\\n\" after the header");
      sub.add_flag("--no-thinking", a->no_thinking, "Qwen3: enable_thinking=false (empty think block)");
      sub.add_option("--date", a->date, "Llama 3.1: the \"Today Date\" line (default 26 Jul 2024)");
      sub.add_flag("--ids", a->ids, "print the prompt's token ids (JSON array) instead of its text");
      return [a]() -> int { return run_chat(*a); };
    }};

}  // namespace
