// `r1kit tokenize`: token ids of texts with a Hugging Face tokenizer.json (no special tokens added
// unless --add-special-tokens).
//   r1kit tokenize --tokenizer DIR --jsonl FILE [--out FILE]   each JSON line gets "ids" (from "text")
//   r1kit tokenize --tokenizer DIR --text STRING               prints the ids as a JSON array
//   r1kit tokenize --tokenizer DIR --decode 1,2,3              prints the text of ids
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>

#include "cli/command.h"
#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "model/tokenizer.h"

namespace {

using namespace r1kit;

struct TokenizeArgs {
  std::string tokenizer;    // tokenizer.json or its directory
  std::string jsonl;        // input JSON lines with a "text" field
  std::string text;         // a single string
  std::string decode;       // comma-separated ids to decode
  std::string out;          // output file for --jsonl (atomic); stdout when empty
  std::string field = "text";  // name of the text field in --jsonl records
  bool add_special_tokens = false;
  bool skip_special_tokens = false;
};

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= s.size()) {
    const size_t comma = std::min(s.find(',', pos), s.size());
    const std::string item = s.substr(pos, comma - pos);
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    R1_CHECK(used == item.size() && !item.empty() && v >= 0 && v < (1LL << 31), "--decode: bad id \"", item, "\"");
    ids.push_back(static_cast<int32_t>(v));
    pos = comma + 1;
  }
  return ids;
}

int run_tokenize(const TokenizeArgs& a) {
  const int modes = !a.jsonl.empty() + !a.text.empty() + !a.decode.empty();
  R1_CHECK(modes == 1, "give exactly one of --jsonl, --text and --decode");
  R1_CHECK(a.out.empty() || !a.jsonl.empty(), "--out goes with --jsonl");
  const Tokenizer tok = Tokenizer::from_file(a.tokenizer);
  if (!a.text.empty()) {
    std::cout << dump_line(json(tok.encode(a.text, a.add_special_tokens))) << "\n";
    return 0;
  }
  if (!a.decode.empty()) {
    std::cout << tok.decode(parse_ids(a.decode), a.skip_special_tokens) << "\n";
    return 0;
  }
  // Lines are parsed with key order kept, so each record comes back as it was plus "ids".
  auto write_all = [&](std::FILE* f) {
    std::ifstream in(a.jsonl, std::ios::binary);
    R1_CHECK(in, a.jsonl, ": cannot open");
    std::string line;
    for (int lineno = 1; std::getline(in, line); ++lineno) {
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      const std::string where = str_cat(a.jsonl, ":", lineno);
      nlohmann::ordered_json rec;
      try {
        rec = nlohmann::ordered_json::parse(line);
      } catch (const std::exception& e) {
        R1_FAIL(where, ": invalid JSON: ", e.what());
      }
      R1_CHECK(rec.is_object(), where, ": a JSON object per line is required");
      auto it = rec.find(a.field);
      R1_CHECK(it != rec.end() && it->is_string(), where, ": missing string field \"", a.field, "\"");
      rec["ids"] = tok.encode(it->get<std::string>(), a.add_special_tokens);
      const std::string out = rec.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
      R1_CHECK(std::fwrite(out.data(), 1, out.size(), f) == out.size(), "write failed");
    }
  };
  if (a.out.empty()) {
    write_all(stdout);
    std::fflush(stdout);
  } else {
    write_file_atomic(a.out, write_all);
  }
  return 0;
}

r1kit::cli::Registrar reg{
    "tokenize", "token ids of texts (JSON lines or one string) with a tokenizer.json", [](CLI::App& sub) {
      auto a = std::make_shared<TokenizeArgs>();
      sub.add_option("--tokenizer", a->tokenizer, "tokenizer.json or the directory holding it")->required();
      sub.add_option("--jsonl", a->jsonl, "JSON lines with a text field; each is written back with \"ids\" added");
      sub.add_option("--text", a->text, "one string: prints its ids as a JSON array");
      sub.add_option("--decode", a->decode, "comma-separated ids: prints their text");
      sub.add_option("--out", a->out, "write the --jsonl output here (atomically) instead of stdout");
      sub.add_option("--field", a->field, "name of the text field in --jsonl records (default \"text\")");
      sub.add_flag("--add-special-tokens", a->add_special_tokens, "apply the post-processor (e.g. BOS)");
      sub.add_flag("--skip-special-tokens", a->skip_special_tokens, "--decode: leave special tokens out");
      return [a]() -> int { return run_tokenize(*a); };
    }};

}  // namespace
