// Checking samples and turning them into per-problem metrics: the part of evaluation that needs no
// model, shared by `r1kit eval` (after generation) and `r1kit eval score` (samples from any engine).
//
// Per-sample JSONL line (written and read):
//   {"problem_id": "aime-2024-I-01", "sample": 3, "greedy": false, "completion": "...",
//    "extracted": "204" | null, "correct": true, "tokens": 812, "finish_reason": "stop"}
// `eval score` input needs only problem_id and completion, plus the gold answer ("answer", or the
// benchmark's answer column) or tests ("test"+"entry_point", "test_list", "tests") unless
// --benchmark supplies them by problem id. "sample" defaults to the line's order within its
// problem; "correct" (+ "extracted") present = already checked (kept), absent = checked here.
#pragma once
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "eval/benchmarks.h"
#include "eval/metrics.h"
#include "rewards/reward.h"

namespace r1kit {
class ThreadPool;
}

namespace r1kit::eval {

struct Sample {
  std::string problem_id;
  int64_t index = -1;               // sample index within the problem (-1: assign in file order)
  bool greedy = false;              // the greedy sample (counts for "greedy", not for pass@k)
  std::string completion;
  int64_t tokens = -1;              // completion length in tokens (-1: unknown)
  std::string finish_reason;
  json fields = json::object();     // the checker's gold fields (the problem's record)
  std::optional<std::string> answer;  // extracted answer (math)
  std::optional<bool> correct;      // verdict; nullopt = not checked yet
  std::string error;                // checker failure (counted wrong, reported)
  json to_json() const;
};

// The checker of a benchmark: the math accuracy reward (gold from spec.answer_field, spec.gold_format)
// or the code reward (sandboxed tests, all-or-nothing: a sample is correct when every test passes).
std::unique_ptr<rewards::Reward> make_checker(const BenchmarkSpec& spec);

// Fills answer / correct / error of `sample` from the checker's output.
void apply_check(Sample& sample, const rewards::RewardOutput& out, Checker checker);

// Checks every sample whose verdict is unknown (batched on `pool`, inline when null).
void check_samples(const rewards::Reward& checker, const BenchmarkSpec& spec, std::vector<Sample>& samples,
                   ThreadPool* pool = nullptr);

// Reads an `eval score` input. With `problems` (a benchmark), problem ids must be among them and
// their records supply the gold fields; without, each line must carry its own. Errors name the
// file and line: invalid JSON, missing problem_id / completion / gold, unknown problem id,
// duplicate (problem_id, sample).
std::vector<Sample> read_samples(const std::string& path, const BenchmarkSpec& spec,
                                 const std::vector<Problem>* problems);

// The math checker as an answer equivalence (extracted answers compared as answers).
AnswerEquiv math_answer_equiv();

struct ProblemResult {
  ProblemMetrics metrics;
  std::vector<std::optional<std::string>> answers;  // per non-greedy sample, by index
  std::optional<std::string> maj_answer;             // the maj@n winner's answer
};

// Groups samples by problem (ordered as first seen), sorts them by index and measures each problem.
// Answers are voted with `equiv` for math; code problems get pass@k only.
std::vector<ProblemResult> measure_problems(const std::vector<Sample>& samples, Checker checker, const AnswerEquiv& equiv);

}  // namespace r1kit::eval
