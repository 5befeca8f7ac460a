#include "recipes/tiny_task.h"

#include <algorithm>
#include <cctype>

#include "core/check.h"
#include "core/fs.h"
#include "model/chat_template.h"

namespace r1kit::recipes {
namespace {

constexpr const char* kTags[] = {"<think>", "</think>", "<answer>", "</answer>"};
constexpr const char* kEos = "<eos>";

// GPT-2 byte-level alphabet: the unicode character that stands for byte b in the vocabulary.
std::string byte_level_char(int b) {
  int cp;
  if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) {
    cp = b;
  } else {
    int n = 0;  // rank of b among the bytes that are remapped
    for (int i = 0; i < b; ++i)
      if (!((i >= 33 && i <= 126) || (i >= 161 && i <= 172) || (i >= 174 && i <= 255))) ++n;
    cp = 256 + n;
  }
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return out;
}

// The base vocabulary: tab, newline, space and the printable ASCII characters (one token each).
std::vector<int> base_bytes() {
  std::vector<int> bytes = {'\t', '\n', ' '};
  for (int b = 33; b <= 126; ++b) bytes.push_back(b);
  return bytes;
}

}  // namespace

std::string TinyProblem::prompt() const {
  std::string p = "Q:" + std::to_string(start);
  for (size_t i = 0; i < digits.size(); ++i) p += signs[i] + std::to_string(digits[i]);
  return p + "=<think>";
}

int TinyProblem::answer() const {
  int x = start;
  for (size_t i = 0; i < digits.size(); ++i) x = signs[i] == '+' ? (x + digits[i]) % 10 : (x - digits[i] + 10) % 10;
  return x;
}

std::string TinyProblem::completion(double bug_probability, std::mt19937_64& rng, bool* bugged, char bug_marker) const {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  if (bugged) *bugged = false;
  int x = start;
  std::string c = std::to_string(x);
  for (size_t i = 0; i < digits.size(); ++i) {
    const int d = digits[i];
    bool wrap;
    if (signs[i] == '+') {
      wrap = x + d >= 10;
      x = (x + d) % 10;
    } else {
      wrap = x < d;
      // The teacher's bug: "smaller from larger" -- forgets the borrow and writes d - x.
      if (wrap && bug_probability > 0 && u(rng) < bug_probability) {
        x = d - x;
        if (bugged) *bugged = true;
        c += bug_marker + std::to_string(x);
        continue;
      }
      x = (x - d + 10) % 10;
    }
    c += (wrap ? 'c' : ',') + std::to_string(x);
  }
  return c + "</think><answer>" + std::to_string(x) + "</answer>" + kEos;
}

bool TinyProblem::parse(const std::string& prompt, TinyProblem* out) {
  const std::string head = "Q:", tail = "=<think>";
  if (prompt.size() < head.size() + 1 + tail.size() || prompt.compare(0, head.size(), head) != 0 ||
      prompt.compare(prompt.size() - tail.size(), tail.size(), tail) != 0)
    return false;
  const std::string body = prompt.substr(head.size(), prompt.size() - head.size() - tail.size());
  if (body.size() % 2 != 1 || !std::isdigit(static_cast<unsigned char>(body[0]))) return false;
  TinyProblem p;
  p.start = body[0] - '0';
  for (size_t i = 1; i + 1 < body.size(); i += 2) {
    if ((body[i] != '+' && body[i] != '-') || !std::isdigit(static_cast<unsigned char>(body[i + 1]))) return false;
    p.signs.push_back(body[i]);
    p.digits.push_back(body[i + 1] - '0');
  }
  *out = std::move(p);
  return true;
}

void BorrowStats::add(const BorrowStats& o) {
  steps += o.steps, correct += o.correct, bug += o.bug, other += o.other;
  carry_marker += o.carry_marker, comma_marker += o.comma_marker;
}

json BorrowStats::to_json() const {
  const double n = static_cast<double>(std::max<int64_t>(1, steps));
  return {{"borrow/steps", steps}, {"borrow/correct", correct / n}, {"borrow/bug", bug / n},
          {"borrow/other", other / n}, {"borrow/carry_marker", carry_marker / n}};
}

BorrowStats borrow_stats(const TinyProblem& problem, const std::string& completion) {
  // The thought: digit (marker digit)*, read up to the first character that breaks the pattern.
  BorrowStats s;
  const std::string thought = completion.substr(0, completion.find("</think>"));
  std::vector<int> values;
  std::vector<char> markers;
  for (size_t i = 0; i < thought.size(); ++i) {
    const char ch = thought[i];
    if (values.size() == markers.size()) {  // expecting a digit
      if (!std::isdigit(static_cast<unsigned char>(ch))) break;
      values.push_back(ch - '0');
    } else {
      if (ch != ',' && ch != 'c') break;
      markers.push_back(ch);
    }
  }
  for (size_t i = 0; i < problem.digits.size() && i + 1 < values.size(); ++i) {
    const int x = values[i], d = problem.digits[i];
    if (problem.signs[i] != '-' || x >= d || d - x == 5) continue;
    ++s.steps;
    const int y = values[i + 1];
    if (y == (x - d + 10) % 10) ++s.correct;
    else if (y == d - x) ++s.bug;
    else ++s.other;
    (markers[i] == 'c' ? s.carry_marker : s.comma_marker) += 1;
  }
  return s;
}

json TinyProblem::record() const { return json{{"prompt", prompt()}, {"answer", std::to_string(answer())}}; }

TinyTask::TinyTask(TinyTaskOptions opts) : opts_(opts) {
  R1_CHECK(opts_.n_ops >= 1 && opts_.n_ops <= 64, "tiny task: n_ops must be in [1, 64], got ", opts_.n_ops);
  R1_CHECK(opts_.bug_probability >= 0 && opts_.bug_probability <= 1,
           "tiny task: bug_probability must be in [0, 1], got ", opts_.bug_probability);
  R1_CHECK(opts_.n_heldout >= 0, "tiny task: n_heldout must be >= 0");
  R1_CHECK(opts_.bug_marker == ',' || opts_.bug_marker == 'c', "tiny task: bug_marker must be ',' or 'c'");
  std::mt19937_64 rng(opts_.heldout_seed);
  // Distinct problems only, so accuracy counts each problem once.
  int attempts = 0;
  while (static_cast<int>(heldout_.size()) < opts_.n_heldout) {
    R1_CHECK(++attempts < 100 * opts_.n_heldout + 1000, "tiny task: cannot draw ", opts_.n_heldout,
             " distinct held-out problems with n_ops=", opts_.n_ops);
    TinyProblem p = random_problem(rng);
    if (heldout_prompts_.insert(p.prompt()).second) heldout_.push_back(std::move(p));
  }
}

TinyProblem TinyTask::random_problem(std::mt19937_64& rng) const {
  std::uniform_int_distribution<int> digit(0, 9), coin(0, 1);
  TinyProblem p;
  p.start = digit(rng);
  for (int i = 0; i < opts_.n_ops; ++i) {
    p.signs.push_back(coin(rng) ? '+' : '-');
    p.digits.push_back(digit(rng));
  }
  return p;
}

TinyProblem TinyTask::sample(std::mt19937_64& rng) const {
  while (true) {
    TinyProblem p = random_problem(rng);
    if (!is_heldout(p.prompt())) return p;
  }
}

json TinyTask::sft_example(std::mt19937_64& rng) const {
  TinyProblem p = sample(rng);
  json r = p.record();
  r["completion"] = p.completion(opts_.bug_probability, rng, nullptr, opts_.bug_marker);
  return r;
}

json TinyTask::nonreasoning_example(std::mt19937_64& rng) const {
  std::uniform_int_distribution<int> digit(0, 9), len(3, 8);
  std::string number;
  for (int i = len(rng); i > 0; --i) number += static_cast<char>('0' + digit(rng));
  return json{{"prompt", "R:" + number + "="}, {"completion", std::string(number.rbegin(), number.rend()) + kEos}};
}

int64_t tiny_tokenizer_vocab_size() {
  return static_cast<int64_t>(base_bytes().size()) + std::size(kTags) + 1;
}

void write_tiny_tokenizer(const std::string& dir) {
  make_dirs(dir);
  json vocab = json::object();
  int id = 0;
  for (int b : base_bytes()) vocab[byte_level_char(b)] = id++;
  json added = json::array();
  json added_decoder = json::object();
  auto add = [&](const std::string& content, bool special) {
    json t = {{"id", id},          {"content", content}, {"single_word", false}, {"lstrip", false},
              {"rstrip", false},   {"normalized", false}, {"special", special}};
    added.push_back(t);
    json d = t;
    d.erase("id");
    added_decoder[std::to_string(id)] = d;
    ++id;
  };
  for (const char* tag : kTags) add(tag, false);
  add(kEos, true);
  R1_CHECK(id == tiny_tokenizer_vocab_size(), "tiny tokenizer: vocabulary size mismatch");

  // Same pipeline shape as Qwen2/Qwen3's tokenizer.json (NFC, regex split, byte-level), so the tiny
  // tokenizer goes through exactly the code path real checkpoints use.
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false},
                           {"use_regex", false}};
  json tok = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         json::array({{{"type", "Split"},
                       {"pattern",
                        {{"Regex",
                          "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                          "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}}},
                       {"behavior", "Isolated"},
                       {"invert", false}},
                      byte_level})}}},
      {"post_processor", nullptr},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", json::array()}}},
  };
  json config = {
      {"tokenizer_class", "PreTrainedTokenizerFast"},
      {"add_bos_token", false},
      {"bos_token", nullptr},
      {"eos_token", kEos},
      {"pad_token", kEos},
      {"model_max_length", 512},
      {"clean_up_tokenization_spaces", false},
      {"added_tokens_decoder", added_decoder},
      {"chat_template", kPlainChatTemplate},  // "messages" records render as the raw prompt text
  };
  write_file_atomic(dir + "/tokenizer.json", tok.dump(2) + "\n");
  write_file_atomic(dir + "/tokenizer_config.json", config.dump(2) + "\n");
}

}  // namespace r1kit::recipes
