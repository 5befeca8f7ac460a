#include "eval/benchmarks.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include "core/check.h"
#include "core/fs.h"

namespace r1kit::eval {
namespace {

const char* kCodeInstructionHumanEval =
    "Complete the following Python function. Reply with the whole function in a ```python code block.\n\n"
    "```python\n{prompt}```";
const char* kCodeInstructionMbpp =
    "{prompt}\nYour code should pass these tests:\n{test_list}\nReply with the function in a ```python code block.";

std::string lower_alnum(const std::string& s) {
  std::string out;
  for (char c : s)
    if (std::isalnum(static_cast<unsigned char>(c))) out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string field_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_array()) {
    std::string s;
    for (const auto& e : v) s += (s.empty() ? "" : "\n") + field_text(e);
    return s;
  }
  return v.dump();
}

}  // namespace

const char* checker_name(Checker c) { return c == Checker::kMath ? "math" : "code"; }

const std::vector<BenchmarkSpec>& builtin_benchmarks() {
  static const std::vector<BenchmarkSpec> specs = [] {
    std::vector<BenchmarkSpec> v;
    BenchmarkSpec gsm{"gsm8k", "gsm8k/test.jsonl", "id", "question", "final"};
    gsm.instruction = "{question}\nPlease reason step by step, and put your final answer within \\boxed{}.";
    v.push_back(gsm);
    v.push_back({"math500", "math500/test.jsonl", "id", "problem", "answer", "latex"});
    BenchmarkSpec aime{"aime2024", "aime2024/test.jsonl", "id", "problem", "answer", "int"};
    aime.r1_samples = 64;
    v.push_back(aime);
    v.push_back({"amc2023", "amc2023/test.jsonl", "id", "problem", "final"});
    BenchmarkSpec he{"humaneval", "humaneval/test.jsonl", "task_id", "prompt", "", "auto", Checker::kCode};
    he.instruction = kCodeInstructionHumanEval;
    v.push_back(he);
    BenchmarkSpec mbpp{"mbpp", "mbpp/mbpp_sanitized.jsonl", "task_id", "prompt", "", "auto", Checker::kCode};
    mbpp.instruction = kCodeInstructionMbpp;
    v.push_back(mbpp);
    return v;
  }();
  return specs;
}

BenchmarkSpec find_benchmark(const std::string& name) {
  std::string names;
  for (const auto& s : builtin_benchmarks()) {
    if (lower_alnum(s.name) == lower_alnum(name)) return s;
    names += (names.empty() ? "" : ", ") + s.name;
  }
  R1_FAIL("unknown benchmark '", name, "' (built in: ", names, "; any JSONL: --data FILE --columns id=..,prompt=..,answer=..)");
}

BenchmarkSpec custom_benchmark(const std::string& path, const std::string& mapping, Checker checker) {
  BenchmarkSpec s;
  s.name = path.substr(path.find_last_of('/') + 1);
  if (s.name.size() > 6 && s.name.substr(s.name.size() - 6) == ".jsonl") s.name.resize(s.name.size() - 6);
  s.file = path;
  s.checker = checker;
  s.id_field = "";
  s.prompt_field = "";
  s.answer_field = "";
  size_t pos = 0;
  while (pos < mapping.size()) {
    size_t end = mapping.find(',', pos);
    if (end == std::string::npos) end = mapping.size();
    const std::string item = mapping.substr(pos, end - pos);
    const size_t eq = item.find('=');
    R1_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < item.size(), "column mapping '", mapping, "': '", item,
             "' is not key=COLUMN");
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    if (key == "id") s.id_field = value;
    else if (key == "prompt") s.prompt_field = value;
    else if (key == "answer") s.answer_field = value;
    else if (key == "format") s.gold_format = value;
    else R1_FAIL("column mapping '", mapping, "': unknown key '", key, "' (id, prompt, answer, format)");
    pos = end + 1;
  }
  R1_CHECK(!s.prompt_field.empty(), "column mapping '", mapping, "': needs prompt=COLUMN");
  R1_CHECK(checker == Checker::kCode || !s.answer_field.empty(), "column mapping '", mapping,
           "': a math benchmark needs answer=COLUMN");
  // The prompt as written: a custom file's prompts are already what the model should see (the
  // boxed-answer instruction is part of the built-in benchmarks' R1 protocol).
  s.instruction = "{" + s.prompt_field + "}";
  return s;
}

std::string default_data_dir() {
  if (const char* d = std::getenv("R1_DATA_DIR"); d && *d) return d;
  return R1_DEFAULT_DATA_DIR;
}

std::string render_instruction(const std::string& instruction, const json& record, const std::string& where) {
  std::string out;
  size_t pos = 0;
  while (pos < instruction.size()) {
    const size_t open = instruction.find('{', pos);
    const size_t close = open == std::string::npos ? open : instruction.find('}', open);
    // "{...}" is a field only when it is a plain name (keeps "\boxed{}" literal).
    if (close == std::string::npos) {
      out += instruction.substr(pos);
      break;
    }
    const std::string name = instruction.substr(open + 1, close - open - 1);
    const bool is_field = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    });
    if (!is_field) {
      out += instruction.substr(pos, open + 1 - pos);
      pos = open + 1;
      continue;
    }
    out += instruction.substr(pos, open - pos);
    R1_CHECK(record.is_object() && record.contains(name), where, ": no field '", name, "'");
    out += field_text(record[name]);
    pos = close + 1;
  }
  return out;
}

std::vector<Problem> load_problems(const BenchmarkSpec& spec, const std::string& data_dir, int64_t limit) {
  const std::string path = !spec.file.empty() && spec.file[0] == '/' ? spec.file : data_dir + "/" + spec.file;
  R1_CHECK(path_exists(path), "benchmark '", spec.name, "': ", path, " does not exist (set --data-dir or $R1_DATA_DIR)");
  std::vector<Problem> problems;
  std::set<std::string> ids;
  for_each_jsonl(path, [&](const json& rec, int line) {
    if (limit > 0 && static_cast<int64_t>(problems.size()) >= limit) return;
    const std::string where = "benchmark '" + spec.name + "'";  // for_each_jsonl adds file:line
    (void)line;
    R1_CHECK(rec.is_object(), where, ": not a JSON object");
    Problem p;
    if (spec.id_field.empty()) {
      p.id = std::to_string(problems.size());
    } else {
      R1_CHECK(rec.contains(spec.id_field), where, ": no id field '", spec.id_field, "'");
      p.id = field_text(rec[spec.id_field]);
    }
    R1_CHECK(ids.insert(p.id).second, where, ": duplicate problem id '", p.id, "'");
    R1_CHECK(rec.contains(spec.prompt_field), where, ": no prompt field '", spec.prompt_field, "'");
    if (spec.checker == Checker::kMath)
      R1_CHECK(rec.contains(spec.answer_field), where, ": no answer field '", spec.answer_field, "'");
    p.prompt = render_instruction(spec.instruction, rec, where);
    p.record = rec;
    problems.push_back(std::move(p));
  });
  R1_CHECK(!problems.empty(), "benchmark '", spec.name, "': ", path, " has no problems");
  return problems;
}

Preset find_preset(const std::string& name, const BenchmarkSpec& spec) {
  Preset p;
  p.name = name;
  if (name == "r1") {
    p.k = spec.r1_samples;
  } else if (name == "greedy") {
    p.temperature = 0.0;
    p.top_p = 1.0;
    p.k = 1;
  } else {
    R1_FAIL("unknown preset '", name, "' (r1, greedy)");
  }
  return p;
}

}  // namespace r1kit::eval
