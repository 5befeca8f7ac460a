// The `eval` stage: generation on the task's held-out records through the rollout engine, scored
// by a reward from the registry (by default "accuracy", the math answer checker, which reads the
// tiny task's <answer>5</answer> like any other answer). Writes RUN_DIR/<name>/eval.json
// {accuracy, n, ...} and samples.jsonl (one line per sample: prompt, completion, score, why), plus
// the R1-style metrics of the samples (eval/): pass@1, pass@k and maj@k for powers of two k <=
// samples, standard errors, in RUN_DIR/<name>/heldout/{samples,problems}.jsonl, summary.json,
// plots/pass_at_k.svg, plots/response_length.svg and RUN_DIR/<name>/report.md.
//
//   - name: eval_sft
//     kind: eval
//     limit: 0               # held-out records to use (0 = all)
//     samples: 1             # completions per record; accuracy is the mean over all of them
//     temperature: 0         # 0 = greedy
//     max_new_tokens: 32
//     reward: accuracy       # registry name; reward_options: {...} passed to it
//
// With `benchmark: NAME` (gsm8k, math500, aime2024, amc2023, humaneval, mbpp) the stage evaluates
// the model on that benchmark instead (recipes/eval_benchmark.h) into RUN_DIR/<name>/NAME/:
//
//   - name: eval_aime
//     kind: eval
//     benchmark: aime2024
//     preset: r1             # r1 (T 0.6, top-p 0.95, k 64 for AIME, <think> start) | greedy
//     samples: 64            # optional: overrides the preset's k (likewise temperature, top_p)
//     max_new_tokens: 4096
//     greedy: true           # also one greedy sample per problem
//     limit: 0               # first N problems (0 = all)
#include <torch/torch.h>

#include "core/fs.h"
#include "core/logging.h"
#include "core/timer.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "eval/score.h"
#include "recipes/eval_benchmark.h"
#include "recipes/heldout_eval.h"
#include "recipes/stages.h"
#include "rewards/registry.h"
#include "rollout/engine.h"

namespace r1kit::recipes {
namespace {

// The held-out evaluation's options plus the stage's benchmark mode.
struct EvalOptions : HeldoutEvalOptions {
  std::string benchmark;        // "" = the task's held-out records; else a built-in benchmark
  std::string preset = "r1";    // benchmark mode: eval::find_preset
  bool samples_set = false, temperature_set = false, top_p_set = false;  // benchmark mode: override the preset
  bool greedy = false;          // benchmark mode: also one greedy sample per problem
};

class EvalStage : public Stage {
 public:
  explicit EvalStage(EvalOptions opts) : opts_(std::move(opts)) {}

  StageResult run(const StageEnv& env) override {
    apply_recipe_threads(*env.recipe);
    if (!opts_.benchmark.empty()) return run_benchmark(env);
    torch::NoGradGuard no_grad;
    Timer timer;
    // 1. Model and tokenizer.
    ModelConfig cfg;
    Transformer model = load_model(env.input_model, &cfg, recipe_device(*env.recipe), recipe_dtype(*env.recipe));
    model->set_compute_options(recipe_compute(*env.recipe));
    model->eval();
    auto tok = std::make_shared<const Tokenizer>(Tokenizer::from_file(env.input_model));

    // 2. Generate for every held-out record and score (recipes/heldout_eval.h).
    HeldoutEvalOptions opts = opts_;
    opts.prompt_format = env.recipe->data.prompt_format;
    HeldoutEval evaluation(*env.task, model, tok, env.input_model, opts);
    const HeldoutResult res = evaluation.run(env.seed);

    // 3. samples.jsonl + eval.json.
    std::string lines;
    int64_t k = 0;
    for (const auto& g : res.groups) {
      for (const auto& s : g.samples) {
        const auto& out = res.scores[k];
        json line = {{"index", g.index},          {"sample", s.sample_index},     {"prompt", res.prompts[k]},
                     {"completion", s.text},      {"score", out.score},           {"finish_reason", finish_reason_name(s.finish_reason)},
                     {"tokens", s.completion_ids.size()}, {"diagnostics", out.diagnostics}};
        for (const char* field : {"answer", "final"})
          if (res.records[g.index].contains(field)) line[field] = res.records[g.index][field];
        if (out.error) line["error"] = out.error_message;
        lines += dump_line(line) + "\n";
        ++k;
      }
    }
    write_file_atomic(env.stage_dir + "/samples.jsonl", lines);

    // 4. R1-style metrics over the samples: pass@k, maj@k, report and plots.
    std::vector<eval::Sample> samples;
    k = 0;
    for (const auto& g : res.groups) {
      for (const auto& s : g.samples) {
        eval::Sample e;
        e.problem_id = std::to_string(g.index);
        e.index = s.sample_index;
        e.completion = s.text;
        e.tokens = static_cast<int64_t>(s.completion_ids.size());
        e.finish_reason = finish_reason_name(s.finish_reason);
        eval::apply_check(e, res.scores[k++], eval::Checker::kMath);
        samples.push_back(std::move(e));
      }
    }
    eval::BenchmarkSpec heldout;
    heldout.name = "heldout";
    const json settings = {{"k", opts_.samples}, {"temperature", opts_.sampling.temperature},
                           {"top_p", opts_.sampling.top_p}, {"max_new_tokens", opts_.sampling.max_new_tokens},
                           {"reward", opts_.reward}};
    const eval::BenchmarkResult metrics = score_and_write(std::move(samples), heldout, settings, env.stage_dir + "/heldout");
    write_eval_report(env.stage_dir);
    json eval = res.summary;
    eval["metrics"] = metrics.summary.to_json()["metrics"];
    eval["seconds"] = timer.seconds();
    write_file_atomic(env.stage_dir + "/eval.json", eval.dump(2) + "\n");
    const double acc = eval["accuracy"].get<double>();
    spdlog::info("eval '{}': accuracy {:.1f}% over {} samples ({} records), {:.1f} tokens/sample, {:.1f} s", env.name,
                 100.0 * acc, eval["n"].get<int64_t>(), res.records.size(), eval["mean_completion_tokens"].get<double>(),
                 timer.seconds());
    StageResult result;
    result.eval = {{"accuracy", acc}, {"n", eval["n"]}, {"greedy", opts_.sampling.greedy() && opts_.samples == 1}};
    result.info = eval;
    return result;
  }

 private:
  // `benchmark:` mode: a built-in benchmark through recipes/eval_benchmark.h.
  StageResult run_benchmark(const StageEnv& env) {
    Timer timer;
    const eval::BenchmarkSpec spec = eval::find_benchmark(opts_.benchmark);
    BenchmarkEvalOptions o;
    apply_preset(eval::find_preset(opts_.preset, spec), o);
    if (opts_.samples_set) o.k = opts_.samples;
    if (opts_.temperature_set) o.temperature = opts_.sampling.temperature;
    if (opts_.top_p_set) o.top_p = opts_.sampling.top_p;
    o.max_new_tokens = opts_.sampling.max_new_tokens;
    o.greedy = opts_.greedy;
    o.limit = opts_.limit;
    o.seed = env.seed;
    o.prompt_format = env.recipe->data.prompt_format;
    o.pool.engine.max_batch = opts_.max_batch;
    ModelConfig cfg;
    Transformer model = load_model(env.input_model, &cfg, recipe_device(*env.recipe), recipe_dtype(*env.recipe));
    model->set_compute_options(recipe_compute(*env.recipe));
    model->eval();
    const eval::BenchmarkResult r = evaluate_benchmark(model, env.input_model, spec, o, env.stage_dir + "/" + spec.name);
    write_eval_report(env.stage_dir);
    const eval::MetricValue* pass1 = r.summary.find("pass@1");
    json eval = r.to_json();
    eval["accuracy"] = pass1 ? pass1->mean : 0.0;
    eval["n"] = r.summary.samples;
    eval["seconds"] = timer.seconds();
    write_file_atomic(env.stage_dir + "/eval.json", eval.dump(2) + "\n");
    spdlog::info("eval '{}' on {}: pass@1 {:.1f}% over {} problems x {} samples, {:.1f} s", env.name, spec.name,
                 100.0 * eval["accuracy"].get<double>(), r.summary.problems, o.k, timer.seconds());
    StageResult result;
    result.eval = {{"accuracy", eval["accuracy"]}, {"n", r.summary.samples}, {"greedy", o.temperature == 0 && o.k == 1}};
    result.info = eval;
    return result;
  }

  EvalOptions opts_;
};

}  // namespace

std::unique_ptr<Stage> parse_eval_stage(ConfigNode& node, const RecipeSettings&) {
  EvalOptions o;
  o.sampling.temperature = 0.0;
  o.sampling.max_new_tokens = 64;
  const bool benchmark_mode = node.has("benchmark");
  if (benchmark_mode) o.sampling.max_new_tokens = 1024;
  node.read("limit", o.limit);
  node.read("samples", o.samples);
  node.read("temperature", o.sampling.temperature);
  node.read("top_p", o.sampling.top_p);
  node.read("top_k", o.sampling.top_k);
  node.read("max_new_tokens", o.sampling.max_new_tokens);
  node.read("max_batch", o.max_batch);
  node.read("reward", o.reward);
  node.read("benchmark", o.benchmark);
  node.read("preset", o.preset);
  node.read("greedy", o.greedy);
  o.samples_set = node.has("samples");
  o.temperature_set = node.has("temperature");
  o.top_p_set = node.has("top_p");
  if (node.has("reward_options")) {
    ConfigNode ro = node.child("reward_options");
    o.reward_options = ro.raw();
  }
  node.finish();
  if (o.limit < 0) node.fail("limit", "must be >= 0");
  if (o.samples < 1) node.fail("samples", "must be >= 1");
  if (o.max_batch < 1) node.fail("max_batch", "must be >= 1");
  try {
    o.sampling.validate();
  } catch (const Error& e) {
    std::string stage = node.key_path("_");
    stage.resize(stage.size() - 2);
    R1_FAIL(node.where(), ": '", stage, "': ", e.what());
  }
  o.where = node.where();
  o.reward_path = node.key_path("reward_options");
  // Build the reward once now so a bad name or option fails before any stage runs.
  ConfigNode check(o.reward_options, o.where, o.reward_path);
  rewards::RewardRegistry::global().create(o.reward, check);
  return std::make_unique<EvalStage>(std::move(o));
}

}  // namespace r1kit::recipes
