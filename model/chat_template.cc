#include "model/chat_template.h"

#include <filesystem>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "model/unicode.h"

namespace r1kit {
namespace {

constexpr const char* kQwenDefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
constexpr const char* kLlamaBos = "<|begin_of_text|>";
constexpr const char* kDeepSeekBos = "<\uff5cbegin\u2581of\u2581sentence\uff5c>";
constexpr const char* kDsUser = "<\uff5cUser\uff5c>";
constexpr const char* kDsAssistant = "<\uff5cAssistant\uff5c>";
constexpr const char* kDsEos = "<\uff5cend\u2581of\u2581sentence\uff5c>";
constexpr const char* kDsOutputsBegin = "<\uff5ctool\u2581outputs\u2581begin\uff5c>";
constexpr const char* kDsOutputsEnd = "<\uff5ctool\u2581outputs\u2581end\uff5c>";
constexpr const char* kDsOutputBegin = "<\uff5ctool\u2581output\u2581begin\uff5c>";
constexpr const char* kDsOutputEnd = "<\uff5ctool\u2581output\u2581end\uff5c>";

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Python's str.strip() / lstrip() / rstrip() with no argument (Jinja's trim): str.isspace characters.
bool py_space(int32_t cp) { return unicode::is_white_space(cp) || (cp >= 0x1C && cp <= 0x1F); }

std::string py_strip(const std::string& s, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (left) {
    while (b < e) {
      int len;
      const int32_t cp = unicode::decode_utf8(s, b, &len);
      if (!py_space(cp)) break;
      b += len;
    }
  }
  if (right) {
    while (e > b) {
      size_t p = e - 1;
      while (p > b && (static_cast<uint8_t>(s[p]) & 0xC0) == 0x80) --p;
      int len;
      const int32_t cp = unicode::decode_utf8(s, p, &len);
      if (!py_space(cp)) break;
      e = p;
    }
  }
  return s.substr(b, e - b);
}

// Python's s.strip(chars) / lstrip / rstrip for a set of ASCII characters.
std::string strip_chars(const std::string& s, const char* chars, bool left, bool right) {
  const size_t b = left ? s.find_first_not_of(chars) : 0;
  if (b == std::string::npos) return "";
  const size_t e = right ? s.find_last_not_of(chars) : s.size() - 1;
  return s.substr(b, e - b + 1);
}

// Python: s.split(sep)[-1] and s.split(sep)[0].
std::string after_last(const std::string& s, const std::string& sep) {
  const size_t p = s.rfind(sep);
  return p == std::string::npos ? s : s.substr(p + sep.size());
}
std::string before_first(const std::string& s, const std::string& sep) {
  const size_t p = s.find(sep);
  return p == std::string::npos ? s : s.substr(0, p);
}

void check_roles(const std::vector<ChatMessage>& m, const std::string& family,
                 std::initializer_list<const char*> roles) {
  R1_CHECK(!m.empty(), "chat template ", family, ": the conversation has no messages");
  for (size_t i = 0; i < m.size(); ++i) {
    bool ok = false;
    for (const char* r : roles) ok = ok || m[i].role == r;
    if (!ok) {
      std::string list;
      for (const char* r : roles) list += std::string(list.empty() ? "" : ", ") + r;
      R1_FAIL("chat template ", family, ": messages[", i, "].role \"", m[i].role, "\" is not one of ", list);
    }
  }
}

// Qwen2.5-style templates spell their default system prompt as a Jinja string literal
// '<|im_start|>system\n...<|im_end|>\n'; returns it unescaped, or "" when there is none.
std::string qwen_default_system(const std::string& tpl) {
  const std::string head = "'<|im_start|>system\\n";
  for (size_t p = tpl.find(head); p != std::string::npos; p = tpl.find(head, p + 1)) {
    const size_t b = p + head.size();
    if (b < tpl.size() && tpl[b] == '\'') continue;  // '...system\n' + messages[0]['content']
    const size_t e = tpl.find("<|im_end|>", b);
    if (e == std::string::npos) break;
    std::string out;
    for (size_t i = b; i < e; ++i) {
      if (tpl[i] == '\\' && i + 1 < e) {
        const char c = tpl[++i];
        out += c == 'n' ? '\n' : c == 't' ? '\t' : c;
      } else {
        out += tpl[i];
      }
    }
    return out;
  }
  return "";
}

}  // namespace

std::vector<std::string> ChatTemplate::names() {
  return {"qwen2.5", "qwen3", "llama3", "llama3.1", "deepseek-r1", "deepseek-v3", "plain"};
}

ChatTemplate ChatTemplate::by_name(const std::string& name) {
  ChatTemplate t;
  t.name_ = name;
  if (name == "qwen2.5" || name == "qwen2" || name == "chatml") {
    t.family_ = ChatFamily::kQwen25;
    t.default_system_ = kQwenDefaultSystem;
  } else if (name == "qwen3") {
    t.family_ = ChatFamily::kQwen3;
  } else if (name == "llama3") {
    t.family_ = ChatFamily::kLlama3;
    t.bos_ = kLlamaBos;
  } else if (name == "llama3.1") {
    t.family_ = ChatFamily::kLlama31;
    t.bos_ = kLlamaBos;
  } else if (name == "deepseek-r1") {
    t.family_ = ChatFamily::kDeepSeekR1;
    t.bos_ = kDeepSeekBos;
  } else if (name == "deepseek-v3") {
    t.family_ = ChatFamily::kDeepSeekV3;
    t.bos_ = kDeepSeekBos;
  } else if (name == "plain") {
    t.family_ = ChatFamily::kPlain;
  } else {
    std::string list;
    for (const auto& n : names()) list += (list.empty() ? "" : ", ") + n;
    R1_FAIL("unknown chat template \"", name, "\" (known: ", list, ")");
  }
  return t;
}

ChatTemplate ChatTemplate::from_jinja(const std::string& tpl, const std::string& where) {
  ChatTemplate t;
  if (py_strip(tpl, true, true) == kPlainChatTemplate) {
    t = by_name("plain");
  } else if (contains(tpl, kDsUser) && contains(tpl, kDsAssistant)) {
    const bool v3 = contains(tpl, "is_first_sp") || !contains(tpl, "</think>");
    t = by_name(v3 ? "deepseek-v3" : "deepseek-r1");
    t.think_prefill_ = contains(tpl, std::string(kDsAssistant) + "<think>\\n");
  } else if (contains(tpl, "<|im_start|>")) {
    if (contains(tpl, "reasoning_content") || contains(tpl, "</think>")) {
      t = by_name("qwen3");
    } else {
      t = by_name("qwen2.5");
      t.default_system_ = qwen_default_system(tpl);
    }
  } else if (contains(tpl, "<|start_header_id|>")) {
    if (contains(tpl, "Cutting Knowledge Date")) {
      t = by_name("llama3.1");
    } else {
      t = by_name("llama3");
      t.generation_prompt_always_ = !contains(tpl, "add_generation_prompt");
    }
  } else {
    R1_FAIL(where, ": chat_template is not one of the supported families (",
            "ChatML/Qwen, Llama 3, DeepSeek); choose one by name");
  }
  return t;
}

ChatTemplate ChatTemplate::from_tokenizer_config(const std::string& path) {
  std::string file = path;
  if (std::filesystem::is_directory(path)) file = (std::filesystem::path(path) / "tokenizer_config.json").string();
  R1_CHECK(std::filesystem::exists(file), file, ": tokenizer_config.json not found");
  const json cfg = parse_json(read_file(file), file);
  R1_CHECK(cfg.is_object(), file, ": must be a JSON object");
  auto it = cfg.find("chat_template");
  R1_CHECK(it != cfg.end() && !it->is_null(), file, ": missing chat_template");
  std::string tpl;
  if (it->is_string()) {
    tpl = it->get<std::string>();
  } else if (it->is_array()) {  // [{"name": "default", "template": "..."}, ...]
    for (const json& e : *it)
      if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
        tpl = e["template"].get<std::string>();
    R1_CHECK(!tpl.empty(), file, ": chat_template has no \"default\" entry");
  } else {
    R1_FAIL(file, ": chat_template must be a string");
  }
  ChatTemplate t = from_jinja(tpl, file);
  if (auto b = cfg.find("bos_token"); b != cfg.end()) {
    if (b->is_string()) t.bos_ = b->get<std::string>();
    else if (b->is_object() && b->contains("content") && (*b)["content"].is_string()) t.bos_ = (*b)["content"];
  }
  return t;
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& m, const ChatOptions& o) const {
  switch (family_) {
    case ChatFamily::kQwen25:
    case ChatFamily::kQwen3: return render_qwen(m, o);
    case ChatFamily::kLlama3: return render_llama3(m, o);
    case ChatFamily::kLlama31: return render_llama31(m, o);
    case ChatFamily::kDeepSeekR1:
    case ChatFamily::kDeepSeekV3: return render_deepseek(m, o);
    case ChatFamily::kPlain: {
      check_roles(m, name_, {"system", "user", "assistant", "tool"});
      std::string out;
      for (const auto& msg : m) out += msg.content;
      return out;
    }
  }
  return "";
}

std::string ChatTemplate::render_qwen(const std::vector<ChatMessage>& m, const ChatOptions& o) const {
  const bool qwen3 = family_ == ChatFamily::kQwen3;
  check_roles(m, name_, {"system", "user", "assistant", "tool"});
  std::string out;
  if (m[0].role == "system") out += "<|im_start|>system\n" + m[0].content + "<|im_end|>\n";
  else if (!qwen3) out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
  // Qwen3: the last user turn that is not a tool response; assistant turns after it keep thinking.
  size_t last_query = m.size() - 1;
  for (size_t k = m.size(); k-- > 0;) {
    const std::string& c = m[k].content;
    const bool tool_response = c.rfind("<tool_response>", 0) == 0 && c.size() >= 16 &&
                               c.compare(c.size() - 16, 16, "</tool_response>") == 0;
    if (m[k].role == "user" && !tool_response) {
      last_query = k;
      break;
    }
  }
  for (size_t i = 0; i < m.size(); ++i) {
    const ChatMessage& msg = m[i];
    if (msg.role == "user" || (msg.role == "system" && i > 0)) {
      out += "<|im_start|>" + msg.role + "\n" + msg.content + "<|im_end|>\n";
    } else if (msg.role == "assistant") {
      if (!qwen3) {
        out += "<|im_start|>assistant\n" + msg.content + "<|im_end|>\n";
        continue;
      }
      std::string content = msg.content, reasoning;
      if (contains(msg.content, "</think>")) {
        content = strip_chars(after_last(msg.content, "</think>"), "\n", true, false);
        reasoning = strip_chars(after_last(strip_chars(before_first(msg.content, "</think>"), "\n", false, true),
                                           "<think>"),
                                "\n", true, false);
      }
      if (i > last_query && (i + 1 == m.size() || !reasoning.empty())) {
        out += "<|im_start|>assistant\n<think>\n" + strip_chars(reasoning, "\n", true, true) + "\n</think>\n\n" +
               strip_chars(content, "\n", true, false);
      } else {
        out += "<|im_start|>assistant\n" + content;
      }
      out += "<|im_end|>\n";
    } else if (msg.role == "tool") {
      if (i == 0 || m[i - 1].role != "tool") out += "<|im_start|>user";
      out += "\n<tool_response>\n" + msg.content + "\n</tool_response>";
      if (i + 1 == m.size() || m[i + 1].role != "tool") out += "<|im_end|>\n";
    }
  }
  if (o.add_generation_prompt) {
    out += "<|im_start|>assistant\n";
    if (qwen3 && !o.enable_thinking) out += "<think>\n\n</think>\n\n";
  }
  return out;
}

std::string ChatTemplate::render_llama3(const std::vector<ChatMessage>& m, const ChatOptions& o) const {
  R1_CHECK(!m.empty(), "chat template ", name_, ": the conversation has no messages");
  std::string out;
  for (size_t i = 0; i < m.size(); ++i) {
    if (i == 0) out += bos_;
    out += "<|start_header_id|>" + m[i].role + "<|end_header_id|>\n\n" + py_strip(m[i].content, true, true) +
           "<|eot_id|>";
  }
  if (o.add_generation_prompt || generation_prompt_always_) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string ChatTemplate::render_llama31(const std::vector<ChatMessage>& m, const ChatOptions& o) const {
  check_roles(m, name_, {"system", "user", "assistant", "tool", "ipython"});
  std::string out = bos_;
  size_t first = 0;
  std::string system;
  if (m[0].role == "system") {
    system = py_strip(m[0].content, true, true);
    first = 1;
  }
  out += "<|start_header_id|>system<|end_header_id|>\n\n";
  out += "Cutting Knowledge Date: December 2023\n";
  out += "Today Date: " + o.date_string + "\n\n";
  out += system + "<|eot_id|>";
  for (size_t i = first; i < m.size(); ++i) {
    if (m[i].role == "tool" || m[i].role == "ipython") {
      // The template writes string contents through tojson (a string is "iterable" in Jinja).
      out += "<|start_header_id|>ipython<|end_header_id|>\n\n" + json(m[i].content).dump(-1, ' ', false) + "<|eot_id|>";
    } else {
      out += "<|start_header_id|>" + m[i].role + "<|end_header_id|>\n\n" + py_strip(m[i].content, true, true) +
             "<|eot_id|>";
    }
  }
  if (o.add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return out;
}

std::string ChatTemplate::render_deepseek(const std::vector<ChatMessage>& m, const ChatOptions& o) const {
  const bool r1 = family_ == ChatFamily::kDeepSeekR1;
  check_roles(m, name_, {"system", "user", "assistant", "tool"});
  std::string system;
  bool first_system = true;
  for (const ChatMessage& msg : m) {
    if (msg.role != "system") continue;
    if (r1) system = msg.content;  // R1 keeps the last one
    else system = first_system ? msg.content : system + "\n\n" + msg.content;
    first_system = false;
  }
  std::string out = bos_ + system;
  bool is_tool = false, output_first = true;
  for (const ChatMessage& msg : m) {
    if (msg.role == "user") {
      is_tool = false;
      out += kDsUser + msg.content;
    } else if (msg.role == "assistant") {
      if (is_tool) {
        out += kDsOutputsEnd + msg.content + kDsEos;
        is_tool = false;
      } else {
        // R1 drops the reasoning of earlier assistant turns: only the text after </think> stays.
        const std::string content = r1 && contains(msg.content, "</think>") ? after_last(msg.content, "</think>")
                                                                              : msg.content;
        out += kDsAssistant + content + kDsEos;
      }
    } else if (msg.role == "tool") {
      is_tool = true;
      if (output_first) {
        out += std::string(kDsOutputsBegin) + kDsOutputBegin + msg.content + kDsOutputEnd;
        output_first = false;  // (the template never resets this)
      } else {
        out += std::string("\n") + kDsOutputBegin + msg.content + kDsOutputEnd;
      }
    }
  }
  if (is_tool) out += kDsOutputsEnd;
  if (o.add_generation_prompt && !is_tool) {
    out += kDsAssistant;
    const bool prefill = o.think_prefill < 0 ? think_prefill_ : o.think_prefill > 0;
    if (prefill) out += "<think>\n";
  }
  return out;
}

std::string render_chat(const std::vector<ChatMessage>& messages, const std::string& tokenizer_dir,
                        const ChatOptions& options, const std::string& template_name) {
  const ChatTemplate t =
      template_name.empty() ? ChatTemplate::from_tokenizer_config(tokenizer_dir) : ChatTemplate::by_name(template_name);
  return t.render(messages, options);
}

std::vector<ChatMessage> chat_messages_from_json(const json& m, const std::string& where, const std::string& field) {
  R1_CHECK(m.is_array() && !m.empty(), where, ": field '", field, "' must be a non-empty list");
  std::vector<ChatMessage> msgs;
  for (size_t i = 0; i < m.size(); ++i) {
    R1_CHECK(m[i].is_object() && m[i].contains("role") && m[i]["role"].is_string() && m[i].contains("content") &&
                 m[i]["content"].is_string(),
             where, ": ", field, "[", i, "] must be {\"role\": string, \"content\": string}");
    msgs.push_back({m[i]["role"].get<std::string>(), m[i]["content"].get<std::string>()});
  }
  return msgs;
}

}  // namespace r1kit
