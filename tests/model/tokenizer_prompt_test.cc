// Prompt encoding (model/tokenizer_prompt.h) against what Hugging Face transformers feeds the model:
// tests/data/tokenizer/prompt_ids.json (tests/reference/gen_prompt_ids.py) holds tokenizer(text) and
// apply_chat_template(..., add_generation_prompt=True, tokenize=True) for the four tokenizers of
// ../shared/tokenizers and for Llama 3 with the post-processor of Meta's original file.
#include "model/tokenizer_prompt.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>

#include <unistd.h>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "tests/test_util.h"

namespace r1kit {
namespace {

const json& reference() {
  static const json doc = parse_json(read_file(test::test_data_path("tokenizer/prompt_ids.json")), "prompt_ids.json");
  return doc;
}

// Per process: ctest runs the tests of this file in parallel processes.
std::string tmp_dir(const std::string& name) {
  const std::string d = testing::TempDir() + "/r1_prompt_" + name + "_" + std::to_string(::getpid());
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// Tokenizer directory for a reference name; the original-post-processor Llama 3 is written to a
// temp dir (the shared llama3 file with Meta's Sequence[ByteLevel, TemplateProcessing]).
std::string tokenizer_dir(const std::string& name) {
  if (name != "llama3_original_post_processor") return test::shared_path("tokenizers/" + name);
  static std::string dir;
  if (dir.empty()) {
    dir = tmp_dir("llama3_original");
    json tj = parse_json(read_file(test::shared_path("tokenizers/llama3/tokenizer.json")), "llama3");
    tj["post_processor"] = reference()["llama3_original_post_processor"];
    write_file_atomic(dir + "/tokenizer.json", tj.dump());
    std::filesystem::copy_file(test::shared_path("tokenizers/llama3/tokenizer_config.json"), dir + "/tokenizer_config.json");
  }
  return dir;
}

const Tokenizer& tokenizer(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& t = cache[name];
  if (!t) t = std::make_unique<Tokenizer>(Tokenizer::from_file(tokenizer_dir(name) + "/tokenizer.json"));
  return *t;
}

std::string ids_str(const std::vector<int32_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size() && i < 12; ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + (v.size() > 12 ? ",...]" : "]");
}

TEST(PromptEncoder, MatchesTransformersPlainAndChat) {
  R1_REQUIRE_FILE(test::shared_path("tokenizers/llama3/tokenizer.json"));
  std::map<std::string, int> checked, with_bos;
  int failures = 0;
  for (const json& c : reference()["cases"]) {
    const std::string name = c["tokenizer"], mode = c["mode"];
    PromptFormat f;
    f.chat = mode == "chat";
    f.system_prompt = c.value("system", "");
    const PromptEncoder enc(tokenizer(name), tokenizer_dir(name), f);
    const std::vector<int32_t> got = enc.encode(c["prompt"].get<std::string>());
    const std::vector<int32_t> want = c["ids"].get<std::vector<int32_t>>();
    if (got != want && ++failures <= 6)
      ADD_FAILURE() << name << " " << mode << " " << json(c["prompt"]).dump() << "\n  got:  " << ids_str(got)
                    << "\n  want: " << ids_str(want);
    ++checked[name + " " + mode];
    if (!want.empty() && (want[0] == 128000 || want[0] == 151646 || (name == "deepseek_v3" && want[0] == 0)))
      ++with_bos[name + " " + mode];
  }
  for (const auto& [k, n] : checked) std::printf("  %-40s %2d prompts equal to transformers %s, %d start with BOS\n",
                                                 k.c_str(), n, reference()["transformers"].get<std::string>().c_str(),
                                                 with_bos[k]);
  EXPECT_EQ(failures, 0);
}

TEST(PromptEncoder, BosWhereTheTokenizerAsksForIt) {
  R1_REQUIRE_FILE(test::shared_path("tokenizers/llama3/tokenizer.json"));
  struct Want {
    const char* name;
    bool bos;
    int32_t id;
  };
  // Qwen: none; R1-Distill: its TemplateProcessing; DeepSeek-V3: add_bos_token (LlamaTokenizerFast);
  // Llama 3 shared copy: ByteLevel post-processor and no add_bos_token, so none (Meta's file: BOS).
  for (const Want& w : {Want{"qwen3", false, -1}, Want{"deepseek_r1_distill_qwen", true, 151646},
                        Want{"deepseek_v3", true, 0}, Want{"llama3", false, -1},
                        Want{"llama3_original_post_processor", true, 128000}}) {
    const PromptEncoder enc(tokenizer(w.name), tokenizer_dir(w.name));
    EXPECT_EQ(enc.adds_bos(), w.bos) << w.name;
    if (w.bos) {
      EXPECT_EQ(enc.bos_id(), w.id) << w.name;
    }
  }
  // A prompt that already starts with BOS gets no second one (transformers would double it).
  const PromptEncoder r1(tokenizer("deepseek_r1_distill_qwen"), tokenizer_dir("deepseek_r1_distill_qwen"));
  const auto ids = r1.encode("<｜begin▁of▁sentence｜>Hi");
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids[0], 151646);
  EXPECT_NE(ids[1], 151646);
}

TEST(PromptEncoder, ChatTemplateWritesBosOnceAndByName) {
  R1_REQUIRE_FILE(test::shared_path("tokenizers/llama3/tokenizer.json"));
  PromptFormat chat;
  chat.chat = true;
  // Llama 3 and R1-Distill: the template's BOS, exactly once; Qwen: none.
  const auto llama = PromptEncoder(tokenizer("llama3_original_post_processor"),
                                   tokenizer_dir("llama3_original_post_processor"), chat).encode("Hi");
  EXPECT_EQ(llama[0], 128000);
  EXPECT_NE(llama[1], 128000);
  const auto r1 = PromptEncoder(tokenizer("deepseek_r1_distill_qwen"), tokenizer_dir("deepseek_r1_distill_qwen"), chat);
  EXPECT_EQ(r1.render("Hi"), "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>");
  EXPECT_EQ(r1.encode("Hi").front(), 151646);
  // A template chosen by name (here a newer R1 revision's "<think>\n" prefill).
  chat.chat_template = "deepseek-r1";
  chat.think_prefill = 1;
  const PromptEncoder named(tokenizer("deepseek_r1_distill_qwen"), "", chat);
  EXPECT_EQ(named.render("Hi").substr(named.render("Hi").size() - 8), "<think>\n");
}

TEST(PromptEncoder, BadConfigsAreErrorsNamingTheFile) {
  R1_REQUIRE_FILE(test::shared_path("tokenizers/qwen3/tokenizer.json"));
  const std::string dir = tmp_dir("bad");
  write_file_atomic(dir + "/tokenizer_config.json", R"({"tokenizer_class": "LlamaTokenizerFast", "add_bos_token": "yes", "bos_token": "<|im_start|>"})");
  auto error_of = [](auto&& fn) -> std::string {
    try {
      fn();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  std::string msg = error_of([&] { PromptEncoder(tokenizer("qwen3"), dir); });
  EXPECT_NE(msg.find(dir + "/tokenizer_config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("add_bos_token"), std::string::npos) << msg;
  PromptFormat chat;
  chat.chat = true;
  write_file_atomic(dir + "/tokenizer_config.json", R"({"tokenizer_class": "Qwen2Tokenizer"})");
  msg = error_of([&] { PromptEncoder(tokenizer("qwen3"), dir, chat); });
  EXPECT_NE(msg.find("missing chat_template"), std::string::npos) << msg;
}

}  // namespace
}  // namespace r1kit
