// Parity with Hugging Face tokenizers (Rust 0.22.2): every record of
// ../shared/tokenizers/<name>/reference.jsonl must encode and decode exactly as HF did.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>

#include "core/json.h"
#include "model/tokenizer.h"
#include "tests/test_util.h"

namespace r1kit {
namespace {

std::string ids_str(const std::vector<int32_t>& v) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < v.size(); ++i) os << (i ? "," : "") << v[i];
  os << "]";
  return os.str();
}

class ReferenceTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceTest, MatchesHuggingFace) {
  const std::string dir = test::shared_path("tokenizers/" + GetParam());
  R1_REQUIRE_FILE(dir + "/tokenizer.json");
  R1_REQUIRE_FILE(dir + "/reference.jsonl");
  const auto t0 = std::chrono::steady_clock::now();
  const Tokenizer tok = Tokenizer::from_file(dir);
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << GetParam() << ": loaded in " << load_s << " s, vocab_size " << tok.vocab_size() << "\n";

  int records = 0, failures = 0, bad_records = 0;
  auto report = [&](const std::string& what, const std::string& id, const std::string& text, const std::string& got,
                    const std::string& want) {
    if (++failures <= 8)
      ADD_FAILURE() << GetParam() << " " << id << " " << what << "\n  text: " << json(text).dump()
                    << "\n  got:  " << got << "\n  want: " << want;
  };
  for_each_jsonl(dir + "/reference.jsonl", [&](const json& rec, int) {
    ++records;
    const int failures_before = failures;
    const std::string id = rec.at("id").get<std::string>();
    const std::string text = rec.at("text").get<std::string>();
    const auto want = rec.at("ids").get<std::vector<int32_t>>();
    const auto want_special = rec.at("ids_with_special").get<std::vector<int32_t>>();
    const auto got = tok.encode(text, false);
    if (got != want) report("encode", id, text, ids_str(got), ids_str(want));
    const auto got_special = tok.encode(text, true);
    if (got_special != want_special) report("encode(add_special)", id, text, ids_str(got_special), ids_str(want_special));
    const std::string dec = tok.decode(want, false);
    if (dec != rec.at("decoded").get<std::string>())
      report("decode", id, text, json(dec).dump(), rec.at("decoded").dump());
    const std::string dec_skip = tok.decode(want, true);
    if (dec_skip != rec.at("decoded_skip_special").get<std::string>())
      report("decode(skip_special)", id, text, json(dec_skip).dump(), rec.at("decoded_skip_special").dump());
    if (failures != failures_before) ++bad_records;
  });
  std::cout << GetParam() << ": " << records - bad_records << "/" << records << " records match (" << failures
            << " mismatching checks)\n";
  EXPECT_GT(records, 300);
  EXPECT_EQ(failures, 0);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, ReferenceTest,
                         ::testing::Values("qwen3", "deepseek_v3", "llama3", "deepseek_r1_distill_qwen"));

}  // namespace
}  // namespace r1kit
