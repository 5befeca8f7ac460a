// Evaluation metrics over k samples per problem, as R1-style papers report them.
//
//   pass@1        mean over the n samples of the verdicts (then mean over problems)
//   pass@k        unbiased estimator 1 - C(n-c, k) / C(n, k) (Chen et al. 2021), for every power of
//                 two k <= n, computed as a product so it never overflows
//   maj@k (cons@k) majority vote over the extracted answers of the first k samples; answers the math
//                 checker judges equivalent ("0.5", "\frac12") are one class; samples without an
//                 answer abstain; ties go to the class whose first member has the lowest sample
//                 index; the vote is right when that first member's verdict is
//   greedy        the verdict of the greedy sample, where one was generated
// Every metric also gets its standard error over problems: sample std (ddof 1) / sqrt(#problems).
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"

namespace r1kit::eval {

// 1 - C(n-c, k) / C(n, k); requires 0 <= c <= n and 1 <= k <= n (throws Error otherwise).
double pass_at_k(int64_t n, int64_t c, int64_t k);

// 1, 2, 4, ... up to n (empty when n < 1).
std::vector<int64_t> power_of_two_ks(int64_t n);

// Are two extracted answers the same answer? (the math checker, in eval/score.h)
using AnswerEquiv = std::function<bool(const std::string& a, const std::string& b)>;

// Class id per sample (0, 1, ... in order of first appearance), -1 for a sample without an answer
// (nullopt). A sample joins the first existing class whose first member equals it under `equiv`.
std::vector<int> answer_classes(const std::vector<std::optional<std::string>>& answers, const AnswerEquiv& equiv);

struct MajorityVote {
  int cls = -1;         // the winning class (-1: no sample among the first k had an answer)
  int64_t votes = 0;    // its size among the first k samples
  int64_t first = -1;   // sample index of its first member
};

// Majority vote among samples [0, k) given their classes (deterministic tie-break, see above).
MajorityVote majority_vote(const std::vector<int>& classes, int64_t k);

// One problem's samples, in sample-index order.
struct ProblemSamples {
  std::string id;
  std::vector<bool> correct;                       // verdict per sample
  std::vector<int> classes;                        // answer_classes(); empty: no voting (code)
  std::optional<bool> greedy;                      // greedy verdict, when generated
};

struct ProblemMetrics {
  std::string id;
  int64_t n = 0, c = 0;
  std::vector<std::pair<int64_t, double>> pass_at;  // (k, pass@k), k = powers of two
  std::vector<std::pair<int64_t, double>> maj_at;   // (k, 0|1)
  std::vector<int64_t> maj_answer_sample;           // per maj_at entry: the winning class's first sample (-1 none)
  std::optional<bool> greedy;
  json to_json() const;
};

ProblemMetrics problem_metrics(const ProblemSamples& p);

struct MetricValue {
  double mean = 0, se = 0;  // mean and standard error over problems
  int64_t problems = 0;
};

// A benchmark's metrics: "pass@1", "pass@2", ..., "maj@1", ..., "greedy" -> mean and standard
// error over the problems that have the metric (pass@k / maj@k need n >= k samples).
struct Summary {
  std::vector<std::pair<std::string, MetricValue>> metrics;  // in report order
  int64_t problems = 0, samples = 0;
  json to_json() const;
  const MetricValue* find(const std::string& name) const;
};

Summary summarize(const std::vector<ProblemMetrics>& problems);

}  // namespace r1kit::eval
