// Evaluation benchmarks: where the problems are, how a problem becomes a prompt, and how its
// samples are checked. Built in (files under the data dir, default ../shared/data, or $R1_DATA_DIR):
//
//   name       file                        id        prompt    gold              checker
//   gsm8k      gsm8k/test.jsonl            id        question  final             math
//   math500    math500/test.jsonl          id        problem   answer (LaTeX)    math
//   aime2024   aime2024/test.jsonl         id        problem   answer (integer)  math
//   amc2023    amc2023/test.jsonl          id        problem   final             math
//   humaneval  humaneval/test.jsonl        task_id   prompt    test/entry_point  code (sandbox)
//   mbpp       mbpp/mbpp_sanitized.jsonl   task_id   prompt    test_list         code (sandbox)
//
// Any other JSONL: custom_benchmark(path, "id=qid,prompt=question,answer=final", checker); its
// prompts are used as written (no instruction added).
// Presets: r1 (temperature 0.6, top-p 0.95, k = 64 for AIME else 16, boxed-answer instruction,
// the response starts after "<think>\n") and greedy (temperature 0, k = 1, same prompts).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/json.h"

namespace r1kit::eval {

enum class Checker { kMath, kCode };
const char* checker_name(Checker c);

struct BenchmarkSpec {
  std::string name;
  std::string file;                 // relative to the data dir, or absolute
  std::string id_field = "id";      // a string or number; "" = the line number
  std::string prompt_field = "problem";
  std::string answer_field = "answer";  // math: the gold answer ("" for code: tests live in the record)
  std::string gold_format = "auto";     // auto | latex | gsm8k | int (rewards::parse_gold_format)
  Checker checker = Checker::kMath;
  // The user prompt; {field} is replaced by the record's field (arrays: one element per line).
  std::string instruction = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{}.";
  int64_t r1_samples = 16;          // k of the R1 preset
};

const std::vector<BenchmarkSpec>& builtin_benchmarks();
// A built-in by name (case-insensitive, "math-500" = "math500"); Error listing the names otherwise.
BenchmarkSpec find_benchmark(const std::string& name);
// A JSONL with a column mapping "id=COL,prompt=COL,answer=COL[,format=auto]" (prompt required;
// answer required for math). Error naming the bad key otherwise.
BenchmarkSpec custom_benchmark(const std::string& path, const std::string& mapping, Checker checker);

std::string default_data_dir();  // $R1_DATA_DIR, else <source dir>/../shared/data

struct Problem {
  std::string id;
  std::string prompt;         // the user prompt (instruction applied)
  json record;                // the dataset record (the checker's fields: answer, test, ...)
};

// Reads the benchmark's problems (limit 0 = all). Errors name the file and line: bad JSON, a
// missing id/prompt/answer field, a duplicate id.
std::vector<Problem> load_problems(const BenchmarkSpec& spec, const std::string& data_dir, int64_t limit = 0);

// Replaces {field} in `instruction` by record[field] (Error naming the field when missing).
std::string render_instruction(const std::string& instruction, const json& record, const std::string& where);

struct Preset {
  std::string name;
  double temperature = 0.6, top_p = 0.95;
  int64_t k = 16;
  bool think_prefix = true;   // the response starts after "<think>\n"
};
// "r1" | "greedy" for `spec` (k of r1 = spec.r1_samples). Error otherwise.
Preset find_preset(const std::string& name, const BenchmarkSpec& spec);

}  // namespace r1kit::eval
