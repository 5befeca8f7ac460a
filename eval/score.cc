#include "eval/score.h"

#include <algorithm>
#include <set>

#include "core/check.h"
#include "core/config.h"
#include "rewards/code_reward.h"
#include "rewards/math_reward.h"
#include "rewards/math_verify.h"

namespace r1kit::eval {

json Sample::to_json() const {
  json j = {{"problem_id", problem_id}, {"sample", index}, {"greedy", greedy}, {"completion", completion}};
  j["extracted"] = answer ? json(*answer) : json(nullptr);
  j["correct"] = correct.value_or(false);
  if (tokens >= 0) j["tokens"] = tokens;
  if (!finish_reason.empty()) j["finish_reason"] = finish_reason;
  if (!error.empty()) j["error"] = error;
  return j;
}

std::unique_ptr<rewards::Reward> make_checker(const BenchmarkSpec& spec) {
  if (spec.checker == Checker::kMath) {
    rewards::MathAccuracyOptions o;
    o.gold_field = spec.answer_field;
    o.gold_format = rewards::parse_gold_format(spec.gold_format, "benchmark '" + spec.name + "' gold format");
    return std::make_unique<rewards::MathAccuracyReward>(o);
  }
  rewards::CodeRewardOptions o;
  o.all_or_nothing = true;
  return std::make_unique<rewards::CodeReward>(o);
}

void apply_check(Sample& s, const rewards::RewardOutput& out, Checker checker) {
  s.correct = !out.error && out.score >= 1.0;
  if (out.error) s.error = out.error_message.empty() ? "checker error" : out.error_message;
  if (checker == Checker::kMath) {
    const auto it = out.diagnostics.find("extracted");
    if (it != out.diagnostics.end() && it->is_string()) s.answer = it->get<std::string>();
  }
}

void check_samples(const rewards::Reward& checker, const BenchmarkSpec& spec, std::vector<Sample>& samples,
                   ThreadPool* pool) {
  std::vector<size_t> todo;
  std::vector<rewards::RewardInput> inputs;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (samples[i].correct) continue;
    rewards::RewardInput in;
    in.completion = samples[i].completion;
    in.fields = samples[i].fields;
    inputs.push_back(std::move(in));
    todo.push_back(i);
  }
  if (todo.empty()) return;
  const auto outs = checker.score_batch(inputs, pool);
  for (size_t j = 0; j < todo.size(); ++j) apply_check(samples[todo[j]], outs[j], spec.checker);
}

std::vector<Sample> read_samples(const std::string& path, const BenchmarkSpec& spec, const std::vector<Problem>* problems) {
  std::map<std::string, const Problem*> by_id;
  if (problems)
    for (const auto& p : *problems) by_id[p.id] = &p;
  std::vector<Sample> samples;
  std::set<std::pair<std::string, int64_t>> seen;
  std::map<std::string, int64_t> next_index;
  for_each_jsonl(path, [&](const json& rec, int) {
    // for_each_jsonl prefixes errors with "path:line: ".
    R1_CHECK(rec.is_object(), "not a JSON object");
    R1_CHECK(rec.contains("problem_id"), "missing field 'problem_id'");
    R1_CHECK(rec.contains("completion") && rec["completion"].is_string(), "missing string field 'completion'");
    Sample s;
    s.problem_id = rec["problem_id"].is_string() ? rec["problem_id"].get<std::string>() : rec["problem_id"].dump();
    s.completion = rec["completion"].get<std::string>();
    if (problems) {
      const auto it = by_id.find(s.problem_id);
      R1_CHECK(it != by_id.end(), "unknown problem_id '", s.problem_id, "' (not in benchmark '", spec.name, "')");
      s.fields = it->second->record;
    } else if (spec.checker == Checker::kMath) {
      R1_CHECK(rec.contains(spec.answer_field), "missing gold answer field '", spec.answer_field,
               "' (or pass --benchmark to take it from the benchmark by problem_id)");
      s.fields = rec;
    } else {
      R1_CHECK(rec.contains("test") || rec.contains("test_list") || rec.contains("tests"),
               "missing tests: 'test' (+ 'entry_point'), 'test_list' or 'tests' (or pass --benchmark)");
      s.fields = rec;
    }
    if (rec.contains("greedy")) s.greedy = rec["greedy"].get<bool>();
    if (rec.contains("tokens")) s.tokens = rec["tokens"].get<int64_t>();
    if (rec.contains("finish_reason")) s.finish_reason = rec["finish_reason"].get<std::string>();
    if (rec.contains("correct")) {
      s.correct = rec["correct"].get<bool>();
      if (rec.contains("extracted") && rec["extracted"].is_string()) s.answer = rec["extracted"].get<std::string>();
    }
    if (s.greedy) {
      s.index = 0;
    } else if (rec.contains("sample")) {
      s.index = rec["sample"].get<int64_t>();
      R1_CHECK(s.index >= 0, "'sample' must be >= 0");
    } else {
      s.index = next_index[s.problem_id];
    }
    if (!s.greedy) {
      R1_CHECK(seen.insert({s.problem_id, s.index}).second, "duplicate sample ", s.index, " of problem '", s.problem_id, "'");
      next_index[s.problem_id] = std::max(next_index[s.problem_id], s.index + 1);
    }
    samples.push_back(std::move(s));
  });
  R1_CHECK(!samples.empty(), path, ": no samples");
  return samples;
}

AnswerEquiv math_answer_equiv() {
  return [](const std::string& a, const std::string& b) {
    rewards::MathVerifyOptions o;
    o.extract_gold = false;
    o.extract_pred = false;
    return rewards::math_equal(a, b, o);
  };
}

std::vector<ProblemResult> measure_problems(const std::vector<Sample>& samples, Checker checker, const AnswerEquiv& equiv) {
  std::vector<std::string> order;
  std::map<std::string, std::vector<const Sample*>> by_problem;
  std::map<std::string, const Sample*> greedy;
  for (const auto& s : samples) {
    if (!by_problem.count(s.problem_id) && !greedy.count(s.problem_id)) order.push_back(s.problem_id);
    if (s.greedy) greedy[s.problem_id] = &s;
    else by_problem[s.problem_id].push_back(&s);
  }
  std::vector<ProblemResult> results;
  for (const auto& id : order) {
    auto& ss = by_problem[id];
    std::sort(ss.begin(), ss.end(), [](const Sample* a, const Sample* b) { return a->index < b->index; });
    ProblemSamples p;
    p.id = id;
    ProblemResult r;
    for (const Sample* s : ss) {
      p.correct.push_back(s->correct.value_or(false));
      r.answers.push_back(s->answer);
    }
    if (greedy.count(id)) p.greedy = greedy[id]->correct.value_or(false);
    if (checker == Checker::kMath && !ss.empty()) p.classes = answer_classes(r.answers, equiv);
    r.metrics = problem_metrics(p);
    if (!r.metrics.maj_answer_sample.empty() && r.metrics.maj_answer_sample.back() >= 0)
      r.maj_answer = r.answers[r.metrics.maj_answer_sample.back()];
    results.push_back(std::move(r));
  }
  return results;
}

}  // namespace r1kit::eval
