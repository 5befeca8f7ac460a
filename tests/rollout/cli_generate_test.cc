// `r1kit generate` end to end on the tiny-qwen2 fixture with a hand-made byte-level tokenizer
// (ids 0..255 = bytes): single-prompt greedy JSON against the reference continuation, batch mode
// output schema, and resume after an interrupted run (torn last line) drawing the same samples.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <unistd.h>

#include "core/fs.h"
#include "core/json.h"
#include "tests/test_util.h"
#include "tests/tokenizer_json_util.h"

using namespace r1kit;
namespace fs = std::filesystem;

namespace {

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// GPT-2 byte-level vocabulary: token id b is byte b (printed through bytes_to_unicode).
json byte_level_tokenizer() {
  std::vector<int> printable;
  for (int b = '!'; b <= '~'; ++b) printable.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) printable.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) printable.push_back(b);
  std::map<int, uint32_t> cp;
  for (int b : printable) cp[b] = static_cast<uint32_t>(b);
  uint32_t extra = 0;
  for (int b = 0; b < 256; ++b)
    if (!cp.count(b)) cp[b] = 256 + extra++;
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[utf8(cp[b])] = b;
  return test::byte_level_bpe_tokenizer_json(vocab, "<|endoftext|>", 256, /*use_regex=*/true);
}

std::string binary() { return std::string(R1_BINARY_DIR) + "/r1kit"; }

int run(const std::string& args, std::string* out = nullptr) {
  const std::string cmd = binary() + " " + args + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  const int rc = pclose(p);
  if (out) *out = text;
  return rc;
}

std::map<std::string, json> records_by_id(const std::string& path) {
  std::map<std::string, json> m;
  for_each_jsonl(path, [&](const json& j, int) { m[j["id"].dump()] = j; });
  return m;
}

class GenerateCli : public testing::Test {
 protected:
  void SetUp() override {
    fixture_ = test::shared_path("fixtures/tiny-qwen2");
    if (!fs::exists(fixture_ + "/model.safetensors")) GTEST_SKIP() << "reference data not found: " << fixture_;
    if (!fs::exists(binary())) GTEST_SKIP() << binary() << " not built (build the r1kit target)";
    dir_ = fs::temp_directory_path() / ("r1kit_generate_cli_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "model");
    fs::copy_file(fixture_ + "/config.json", dir_ / "model/config.json");
    fs::create_symlink(fixture_ + "/model.safetensors", dir_ / "model/model.safetensors");
    write_file_atomic((dir_ / "model/tokenizer.json").string(), byte_level_tokenizer().dump());
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  std::string fixture_;
  fs::path dir_;
};

}  // namespace

TEST_F(GenerateCli, SinglePromptGreedyJsonMatchesReference) {
  const json expected = parse_json(read_file(fixture_ + "/expected.json"), "expected.json");
  std::string ids;
  for (const auto& v : expected["greedy"]["prompt_ids"]) ids += (ids.empty() ? "" : ",") + std::to_string(v.get<int>());
  std::string out;
  ASSERT_EQ(run("generate --model " + fixture_ + " --prompt-ids " + ids +
                    " --max-new-tokens 20 --temperature 0 --ignore-eos --json",
                &out),
            0);
  const json j = parse_json(out, "r1kit generate output");
  EXPECT_EQ(j["completion_ids"], expected["greedy"]["new_tokens"]);
  EXPECT_EQ(j["text"], "");  // the fixture directory has no tokenizer
}

TEST_F(GenerateCli, BatchModeWritesGroupsAndResumes) {
  const std::string prompts = (dir_ / "prompts.jsonl").string();
  write_file_atomic(prompts,
                    "{\"prompt\": \"Hello world\"}\n"
                    "{\"id\": \"q2\", \"prompt\": \"abc\"}\n"
                    "{\"messages\": [{\"role\": \"user\", \"content\": \"2+2?\"}]}\n");
  const std::string out = (dir_ / "out.jsonl").string();
  const std::string cmd = "generate --model " + (dir_ / "model").string() + " --prompts " + prompts + " --out " + out +
                          " -n 3 --max-new-tokens 8 --seed 4 --logprobs --chat-template qwen2.5 --no-progress";
  ASSERT_EQ(run(cmd), 0);
  auto first = records_by_id(out);
  ASSERT_EQ(first.size(), 3u);
  ASSERT_TRUE(first.count("\"q2\""));
  for (const auto& [id, rec] : first) {
    SCOPED_TRACE(id);
    ASSERT_EQ(rec["completions"].size(), 3u);
    EXPECT_GT(rec["prompt_tokens"].get<int>(), 0);
    for (const auto& c : rec["completions"]) {
      EXPECT_LE(c["completion_ids"].size(), 8u);
      EXPECT_EQ(c["logprobs"].size(), c["completion_ids"].size());
      EXPECT_TRUE(c["finish_reason"] == "length" || c["finish_reason"] == "stop");
      EXPECT_TRUE(c["text"].is_string());
    }
  }
  EXPECT_EQ(first["0"]["prompt"], "Hello world");
  EXPECT_NE(first["2"]["prompt"].get<std::string>().find("<|im_start|>user\n2+2?<|im_end|>"), std::string::npos);

  // Simulate a run killed after one prompt, mid-way through writing the second.
  std::string text = read_file(out);
  const size_t first_end = text.find('\n');
  write_file_atomic(out, text.substr(0, first_end + 1) + text.substr(first_end + 1, 25));
  ASSERT_EQ(run(cmd), 0);
  auto resumed = records_by_id(out);
  ASSERT_EQ(resumed.size(), 3u);
  // Same tokens; log-probs equal up to float rounding (the resumed batch has other shapes).
  for (const auto& [id, rec] : first) {
    const json& a = rec["completions"];
    const json& b = resumed[id]["completions"];
    ASSERT_EQ(a.size(), b.size()) << id;
    for (size_t j = 0; j < a.size(); ++j) {
      EXPECT_EQ(a[j]["completion_ids"], b[j]["completion_ids"]) << id;
      EXPECT_EQ(a[j]["text"], b[j]["text"]) << id;
      EXPECT_EQ(a[j]["finish_reason"], b[j]["finish_reason"]) << id;
      for (size_t t = 0; t < a[j]["logprobs"].size(); ++t)
        EXPECT_NEAR(a[j]["logprobs"][t].get<double>(), b[j]["logprobs"][t].get<double>(), 1e-4) << id;
    }
  }
  // A complete output: nothing left to do, file unchanged.
  const std::string before = read_file(out);
  ASSERT_EQ(run(cmd), 0);
  EXPECT_EQ(read_file(out), before);
}
