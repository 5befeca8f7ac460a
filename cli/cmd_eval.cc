// `r1kit eval`: benchmark evaluation the way R1-style papers report it (recipes/eval_benchmark.h,
// eval/): pass@1 over k samples, unbiased pass@k, maj@k, greedy accuracy, standard errors.
//
//   r1kit eval --model DIR --benchmark aime2024 [--preset r1|greedy] [-k 64] [--temperature 0.6]
//              [--top-p 0.95] [--max-new-tokens 4096] [--greedy] [--limit N] --out OUT
//   r1kit eval --model DIR --data my.jsonl --columns id=qid,prompt=question,answer=final --out OUT
//   r1kit eval score --in samples.jsonl [--benchmark NAME | --checker math|code] --out OUT
//
// Writes OUT/<benchmark>/{samples,problems}.jsonl, summary.json, plots/*.svg and OUT/report.md, and
// prints the report. Generation resumes from OUT/<benchmark>/shards after an interruption.
#include <cmath>
#include <iostream>
#include <limits>
#include <memory>

#include "cli/command.h"
#include "cli/model_options.h"
#include "core/check.h"
#include "eval/score.h"
#include "recipes/eval_benchmark.h"

namespace r1kit::cli {
namespace {

struct EvalArgs {
  ModelArgs model;
  std::string benchmarks;                 // comma-separated names
  std::string data, columns, checker = "math", data_dir;
  std::string preset = "r1";
  int64_t k = 0;                          // 0 = the preset's
  double temperature = std::numeric_limits<double>::quiet_NaN();
  double top_p = std::numeric_limits<double>::quiet_NaN();
  int64_t max_new_tokens = 4096;
  bool greedy = false, chat = false, no_think = false, no_progress = false;
  int64_t limit = 0;
  uint64_t seed = 0;
  int workers = 1;
  std::string out;
};

struct ScoreArgs {
  std::string in, benchmark, checker = "math", answer_field = "answer", data_dir, out;
};

eval::Checker parse_checker(const std::string& name) {
  R1_CHECK(name == "math" || name == "code", "--checker: expected math or code, got '", name, "'");
  return name == "math" ? eval::Checker::kMath : eval::Checker::kCode;
}

std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t end = s.find(',', pos);
    if (end == std::string::npos) end = s.size();
    if (end > pos) out.push_back(s.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

int run_eval(const EvalArgs& a) {
  R1_CHECK(!a.model.model.empty(), "--model is required (or use `r1kit eval score` for existing samples)");
  R1_CHECK(a.benchmarks.empty() != a.data.empty(), "give either --benchmark NAME[,NAME] or --data FILE --columns MAP");
  std::vector<eval::BenchmarkSpec> specs;
  if (!a.data.empty()) specs.push_back(eval::custom_benchmark(a.data, a.columns, parse_checker(a.checker)));
  for (const auto& name : split_names(a.benchmarks)) specs.push_back(eval::find_benchmark(name));
  ModelConfig cfg;
  Transformer model = load_model_from_args(a.model, &cfg);
  model->eval();
  for (const auto& spec : specs) {
    recipes::BenchmarkEvalOptions o;
    recipes::apply_preset(eval::find_preset(a.preset, spec), o);
    if (a.k > 0) o.k = a.k;
    if (!std::isnan(a.temperature)) o.temperature = a.temperature;
    if (!std::isnan(a.top_p)) o.top_p = a.top_p;
    if (a.no_think) o.think_prefix = false;
    o.max_new_tokens = a.max_new_tokens;
    o.greedy = a.greedy;
    o.limit = a.limit;
    o.seed = a.seed;
    o.data_dir = a.data_dir;
    o.prompt_format.chat = a.chat;
    o.pool.num_workers = a.workers;
    o.progress = a.no_progress ? 0 : -1;
    recipes::evaluate_benchmark(model, a.model.model, spec, o, a.out + "/" + spec.name);
  }
  std::cout << recipes::write_eval_report(a.out);
  return 0;
}

int run_score(const ScoreArgs& a) {
  eval::BenchmarkSpec spec;
  std::vector<eval::Problem> problems;
  if (!a.benchmark.empty()) {
    spec = eval::find_benchmark(a.benchmark);
    problems = eval::load_problems(spec, a.data_dir.empty() ? eval::default_data_dir() : a.data_dir);
  } else {
    spec.checker = parse_checker(a.checker);
    spec.answer_field = a.answer_field;
    spec.name = a.in.substr(a.in.find_last_of('/') + 1);
    if (spec.name.size() > 6 && spec.name.substr(spec.name.size() - 6) == ".jsonl") spec.name.resize(spec.name.size() - 6);
  }
  std::vector<eval::Sample> samples = eval::read_samples(a.in, spec, a.benchmark.empty() ? nullptr : &problems);
  json settings = {{"source", a.in}};
  recipes::score_and_write(std::move(samples), spec, settings, a.out + "/" + spec.name);
  std::cout << recipes::write_eval_report(a.out);
  return 0;
}

Registrar reg{
    "eval", "evaluate a model on benchmarks (pass@k, maj@k, greedy) or score existing samples (eval score)",
    [](CLI::App& sub) {
      auto a = std::make_shared<EvalArgs>();
      add_model_options(sub, a->model);
      sub.get_option("--model")->required(false);  // `eval score` needs no model
      sub.add_option("--benchmark", a->benchmarks, "gsm8k, math500, aime2024, amc2023, humaneval, mbpp (comma-separated)");
      sub.add_option("--data", a->data, "any JSONL benchmark (with --columns)");
      sub.add_option("--columns", a->columns, "column mapping for --data: id=COL,prompt=COL,answer=COL[,format=auto|latex|gsm8k|int]");
      sub.add_option("--checker", a->checker, "checker for --data: math | code");
      sub.add_option("--data-dir", a->data_dir, "where the built-in benchmarks live (default ../shared/data or $R1_DATA_DIR)");
      sub.add_option("--preset", a->preset, "r1 (T 0.6, top-p 0.95, k 64 for AIME else 16, <think> start) | greedy (T 0, k 1)");
      sub.add_option("-k,--samples", a->k, "samples per problem (default: the preset's)")->check(CLI::PositiveNumber);
      sub.add_option("--temperature", a->temperature, "sampling temperature (default: the preset's)");
      sub.add_option("--top-p", a->top_p, "nucleus mass (default: the preset's)");
      sub.add_option("--max-new-tokens", a->max_new_tokens, "response budget (default 4096)")->check(CLI::PositiveNumber);
      sub.add_flag("--greedy", a->greedy, "also generate one greedy sample per problem (the greedy metric)");
      sub.add_flag("--chat", a->chat, "render prompts with the model's chat template");
      sub.add_flag("--no-think", a->no_think, "do not start the response with <think>\\n");
      sub.add_option("--limit", a->limit, "first N problems only");
      sub.add_option("--seed", a->seed, "base sampling seed (each problem's seed derives from it and its id)");
      sub.add_option("--workers", a->workers, "rollout workers (one per GPU)");
      sub.add_flag("--no-progress", a->no_progress, "no progress bar");
      sub.add_option("--out", a->out, "output directory");

      auto s = std::make_shared<ScoreArgs>();
      CLI::App* score = sub.add_subcommand("score", "score generations from any engine (problem_id, completion, gold or tests)");
      score->add_option("--in", s->in, "samples JSONL")->required();
      score->add_option("--benchmark", s->benchmark, "take gold answers / tests from this benchmark by problem_id");
      score->add_option("--checker", s->checker, "without --benchmark: math | code");
      score->add_option("--answer-field", s->answer_field, "without --benchmark: the gold answer field (math)");
      score->add_option("--data-dir", s->data_dir, "where the built-in benchmarks live");
      score->add_option("--out", s->out, "output directory")->required();
      return [a, s, score]() -> int {
        if (score->parsed()) return run_score(*s);
        R1_CHECK(!a->out.empty(), "--out is required");
        return run_eval(*a);
      };
    }};

}  // namespace
}  // namespace r1kit::cli
