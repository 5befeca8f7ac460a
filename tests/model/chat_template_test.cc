// Chat templates against goldens rendered by jinja2 from the real templates
// (tests/data/chat/goldens.json, made by tests/reference/gen_chat_goldens.py): every golden is
// rendered by the family recognised from its template text and, where equivalent, by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <optional>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "model/chat_template.h"
#include "tests/test_util.h"

namespace r1kit {
namespace {

std::vector<ChatMessage> messages_of(const json& j) {
  std::vector<ChatMessage> m;
  for (const json& x : j) m.push_back({x.at("role").get<std::string>(), x.at("content").get<std::string>()});
  return m;
}

TEST(ChatTemplate, MatchesJinjaGoldens) {
  const json goldens = parse_json(read_file(test::test_data_path("chat/goldens.json")), "goldens.json");
  ASSERT_GT(goldens.size(), 100u);
  int checked = 0, by_config = 0, skipped = 0;
  for (const json& g : goldens) {
    const std::string name = g["template"], source = g["source"];
    const std::string kind = source.substr(0, source.find(':')), rel = source.substr(source.find(':') + 1);
    ChatOptions opt;
    opt.add_generation_prompt = g["add_generation_prompt"];
    const json& o = g["options"];
    if (o.contains("enable_thinking")) opt.enable_thinking = o["enable_thinking"];
    if (o.contains("date_string")) opt.date_string = o["date_string"];
    const auto msgs = messages_of(g["messages"]);
    const std::string expected = g["expected"];
    const std::string what = name + " / " + source + " / " + g["conversation"].get<std::string>() + " / gen=" +
                             (opt.add_generation_prompt ? "1" : "0") + " / " + o.dump();
    // 1. The template recognised from its own text.
    std::optional<ChatTemplate> recognised;
    if (kind == "shared") {
      const std::string path = test::shared_path(rel);
      if (std::filesystem::exists(path)) {
        recognised = ChatTemplate::from_tokenizer_config(path);
        ++by_config;
      } else {
        ++skipped;
      }
    } else {
      recognised = ChatTemplate::from_jinja(read_file(std::string(R1_SOURCE_DIR) + "/" + rel), rel);
    }
    if (recognised) {
      EXPECT_EQ(recognised->name(), name) << what;
      EXPECT_EQ(recognised->render(msgs, opt), expected) << what;
    }
    // 2. By name (the Llama 3 file in ../shared ends with the assistant header unconditionally, so
    //    it is not the by-name "llama3", which follows Meta's Instruct template).
    if (rel != "tokenizers/llama3/tokenizer_config.json") {
      ChatOptions named = opt;
      if (rel.find("deepseek_r1_think") != std::string::npos) named.think_prefill = 1;
      EXPECT_EQ(ChatTemplate::by_name(name).render(msgs, named), expected) << what;
    }
    ++checked;
  }
  std::cout << checked << " goldens checked, " << by_config << " also via ../shared tokenizer_config.json"
            << (skipped ? " (" + std::to_string(skipped) + " without ../shared)" : std::string()) << "\n";
}

TEST(ChatTemplate, QwenDefaultSystemPromptComesFromTheTemplate) {
  const std::string math =
      "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + "
      "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nPlease reason step by step, and put your final answer "
      "within \\\\boxed{}.<|im_end|>\\n' }}{%- endif %}";
  const ChatTemplate t = ChatTemplate::from_jinja(math, "qwen2.5-math");
  EXPECT_EQ(t.family(), ChatFamily::kQwen25);
  EXPECT_EQ(t.render({{"user", "1+1?"}}),
            "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
            "<|im_start|>user\n1+1?<|im_end|>\n");
}

TEST(ChatTemplate, DeepSeekThinkPrefillOption) {
  const ChatTemplate t = ChatTemplate::by_name("deepseek-r1");
  ChatOptions o;
  o.add_generation_prompt = true;
  EXPECT_EQ(t.render({{"user", "Hi"}}, o), "<\uff5cbegin\u2581of\u2581sentence\uff5c><\uff5cUser\uff5c>Hi<\uff5cAssistant\uff5c>");
  o.think_prefill = 1;
  EXPECT_EQ(t.render({{"user", "Hi"}}, o),
            "<\uff5cbegin\u2581of\u2581sentence\uff5c><\uff5cUser\uff5c>Hi<\uff5cAssistant\uff5c><think>\n");
}

TEST(ChatTemplate, BadInputsAreErrors) {
  using ::testing::HasSubstr;
  auto error = [](const std::function<void()>& f) -> std::string {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_THAT(error([] { ChatTemplate::by_name("qwen3").render({}); }), HasSubstr("no messages"));
  EXPECT_THAT(error([] { ChatTemplate::by_name("qwen3").render({{"bot", "x"}}); }),
              HasSubstr("messages[0].role \"bot\" is not one of"));
  EXPECT_THAT(error([] { ChatTemplate::by_name("mistral"); }), HasSubstr("unknown chat template \"mistral\""));
  EXPECT_THAT(error([] { ChatTemplate::from_jinja("{{ messages }}", "cfg.json"); }),
              HasSubstr("cfg.json: chat_template is not one of the supported families"));
  const std::string path = testing::TempDir() + "/r1kit_no_template_config.json";
  write_file_atomic(path, "{\"bos_token\": \"<s>\"}");
  EXPECT_THAT(error([&] { ChatTemplate::from_tokenizer_config(path); }), HasSubstr("missing chat_template"));
}

}  // namespace
}  // namespace r1kit
