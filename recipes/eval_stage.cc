// The `eval` stage: generation on the task's held-out records through the rollout engine, scored
// by a reward from the registry (by default "accuracy", the math answer checker, which reads the
// tiny task's <answer>5</answer> like any other answer). Writes RUN_DIR/<name>/eval.json
// {accuracy, n, ...} and samples.jsonl (one line per sample: prompt, completion, score, why).
//
//   - name: eval_sft
//     kind: eval
//     limit: 0               # held-out records to use (0 = all)
//     samples: 1             # completions per record; accuracy is the mean over all of them
//     temperature: 0         # 0 = greedy
//     max_new_tokens: 32
//     reward: accuracy       # registry name; reward_options: {...} passed to it
#include <torch/torch.h>

#include "core/fs.h"
#include "core/logging.h"
#include "core/timer.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "recipes/heldout_eval.h"
#include "recipes/stages.h"
#include "rewards/registry.h"
#include "rollout/engine.h"

namespace r1kit::recipes {
namespace {

class EvalStage : public Stage {
 public:
  explicit EvalStage(HeldoutEvalOptions opts) : opts_(std::move(opts)) {}

  StageResult run(const StageEnv& env) override {
    apply_recipe_threads(*env.recipe);
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
    json eval = res.summary;
    eval["seconds"] = timer.seconds();
    write_file_atomic(env.stage_dir + "/eval.json", eval.dump(2) + "\n");
    const double acc = eval["accuracy"].get<double>();
    spdlog::info("eval '{}': accuracy {:.1f}% over {} samples ({} records), {:.1f} tokens/sample, {:.1f} s", env.name,
                 100.0 * acc, eval["n"].get<int64_t>(), res.records.size(), eval["mean_completion_tokens"].get<double>(),
                 timer.seconds());
    StageResult result;
    result.eval = {{"accuracy", acc}, {"n", eval["n"]}};
    result.info = eval;
    return result;
  }

 private:
  HeldoutEvalOptions opts_;
};

}  // namespace

std::unique_ptr<Stage> parse_eval_stage(ConfigNode& node, const RecipeSettings&) {
  HeldoutEvalOptions o;
  o.sampling.temperature = 0.0;
  o.sampling.max_new_tokens = 64;
  node.read("limit", o.limit);
  node.read("samples", o.samples);
  node.read("temperature", o.sampling.temperature);
  node.read("top_p", o.sampling.top_p);
  node.read("top_k", o.sampling.top_k);
  node.read("max_new_tokens", o.sampling.max_new_tokens);
  node.read("max_batch", o.max_batch);
  node.read("reward", o.reward);
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
