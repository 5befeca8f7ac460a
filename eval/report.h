// Evaluation outputs, per benchmark directory OUT/<benchmark>/:
//   samples.jsonl    one line per sample (eval/score.h schema)
//   problems.jsonl   one line per problem: problem_id, n, correct, pass@k..., maj@k..., greedy, maj_answer
//   summary.json     {"benchmark", "settings", "problems", "samples", "metrics": {name: {mean, stderr, problems}},
//                     "mean_tokens"}
// and OUT/report.md: one table per benchmark (metric, value in %, standard error). All written atomically.
#pragma once
#include <string>
#include <vector>

#include "core/json.h"
#include "eval/metrics.h"
#include "eval/score.h"

namespace r1kit::eval {

struct BenchmarkResult {
  std::string benchmark;
  json settings = json::object();     // preset, temperature, top_p, k, max_new_tokens, model, ...
  Summary summary;
  double mean_tokens = 0;              // mean completion length (tokens) over samples with a length
  json to_json() const;                // the summary.json document
  static BenchmarkResult from_json(const json& j, const std::string& where);
};

// Measures and writes dir/samples.jsonl, problems.jsonl and summary.json; returns the result.
BenchmarkResult write_benchmark_outputs(const std::string& dir, const std::string& benchmark, const json& settings,
                                        const std::vector<Sample>& samples, const std::vector<ProblemResult>& problems);

// The report: a table per benchmark (rows: pass@k..., maj@k..., greedy).
std::string report_markdown(const std::vector<BenchmarkResult>& results);

}  // namespace r1kit::eval
