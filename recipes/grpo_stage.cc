// The `grpo` stage: the GRPO trainer (grpo/trainer.h) on the task's training prompts, starting
// from the previous stage's model. Every key of grpo/grpo_options.h is accepted (rewards included);
// the stage's seed defaults to one derived from the recipe seed. The trainer checkpoints into
// RUN_DIR/<name>/checkpoints and resumes from them when the stage is re-run after an interruption.
// At the end the reward, accuracy and completion-length curves are printed.
//
// Stage keys besides the trainer's:
//   eval_every: 5     # held-out greedy accuracy of the policy every N steps (0 = never), logged in
//                     # metrics.jsonl as eval/accuracy (+ the task's eval/... statistics) and plotted
//   eval_limit: 200   # held-out records used for it (0 = all)
// The task's statistics of the trained samples (the tiny task: borrow/correct, borrow/bug, ...) are
// logged every step.
#include <torch/torch.h>

#include <cstdio>
#include <iostream>

#include "core/logging.h"
#include "grpo/trainer.h"
#include "model/checkpoint.h"
#include "model/lora.h"
#include "model/tokenizer.h"
#include "recipes/grpo_metrics.h"
#include "recipes/heldout_eval.h"
#include "recipes/plot.h"
#include "recipes/run_plots.h"
#include "recipes/stages.h"

namespace r1kit::recipes {
namespace {

// "name  first -> last  (min .. max)  sparkline" for one metric of the run.
std::string curve_line(const std::string& label, const MetricSeries& m) {
  if (m.value.empty()) return "";
  const auto [mn, mx] = std::minmax_element(m.value.begin(), m.value.end());
  char buf[160];
  std::snprintf(buf, sizeof buf, "  %-18s %8.3f -> %8.3f  (min %.3f, max %.3f)  ", label.c_str(), m.value.front(),
                m.value.back(), *mn, *mx);
  return buf + sparkline(m.value, 50) + "\n";
}

class GrpoStage : public Stage {
 public:
  GrpoStage(grpo::GrpoOptions opts, bool explicit_seed, int64_t eval_every, int64_t eval_limit)
      : opts_(std::move(opts)), explicit_seed_(explicit_seed), eval_every_(eval_every), eval_limit_(eval_limit) {}

  StageResult run(const StageEnv& env) override {
    apply_recipe_threads(*env.recipe);
    grpo::GrpoOptions o = opts_;
    if (!explicit_seed_) o.seed = env.seed;
    grpo::GrpoInputs in;
    in.model_dir = env.input_model;
    const Task* task = env.task;
    const uint64_t data_seed = o.seed;
    in.prompts = [task, data_seed](int64_t first, int64_t n) { return task->train_prompts(data_seed, first, n); };
    in.device = recipe_device(*env.recipe);
    in.dtype = recipe_dtype(*env.recipe);
    in.prompt_format = env.recipe->data.prompt_format;
    in.compute = recipe_compute(*env.recipe);
    in.sample_metrics = [task](const std::vector<json>& records, const std::vector<std::string>& completions) {
      return task->sample_metrics(records, completions);
    };
    // Held-out greedy evaluation on a replica of the policy (weights copied in at each call).
    struct Evaluator {
      Transformer replica{nullptr};
      std::unique_ptr<HeldoutEval> eval;
    };
    auto evaluator = std::make_shared<Evaluator>();
    if (eval_every_ > 0) {
      in.eval_every = eval_every_;
      HeldoutEvalOptions eo;
      eo.limit = eval_limit_;
      eo.prompt_format = env.recipe->data.prompt_format;
      eo.sampling.temperature = 0.0;
      eo.sampling.max_new_tokens = o.max_completion_length;
      const std::string model_dir = env.input_model;
      const uint64_t seed = env.seed;
      in.evaluate = [evaluator, eo, task, model_dir, seed](Transformer& policy) {
        torch::NoGradGuard no_grad;
        if (!evaluator->eval) {
          evaluator->replica = Transformer(policy->config());
          evaluator->replica->to(policy->device(), policy->dtype());
          evaluator->replica->set_compute_options(policy->compute_options());
          evaluator->replica->eval();
          auto tok = std::make_shared<const Tokenizer>(Tokenizer::from_file(model_dir));
          evaluator->eval = std::make_unique<HeldoutEval>(*task, evaluator->replica, tok, model_dir, eo);
        }
        load_hf_state_dict(evaluator->replica, merged_state_dict(policy));  // LoRA: adapter merged
        const json summary = evaluator->eval->run(seed).summary;
        json out = json::object();
        for (const auto& [key, value] : summary.items())
          if (value.is_number()) out["eval/" + key] = value;
        return out;
      };
    }
    const grpo::GrpoResult r = grpo::run_grpo(o, env.stage_dir, in);
    R1_CHECK(r.finished, "grpo stage '", env.name, "' stopped at step ", r.step, " of ", o.steps);

    // The curves of the whole run (a resumed run included), per step.
    const std::string metrics = env.stage_dir + "/metrics.jsonl";
    std::string curves = curve_line("reward", read_metric(metrics, kGrpoRewardKey)) +
                         curve_line("held-out accuracy", read_metric(metrics, kGrpoEvalAccuracyKey)) +
                         curve_line("accuracy", read_metric(metrics, kGrpoAccuracyKey)) +
                         curve_line("completion length", read_metric(metrics, kGrpoLengthKey));
    if (!curves.empty()) std::cout << "grpo '" << env.name << "' curves over " << r.step << " steps:\n" << curves << std::flush;

    StageResult result;
    result.model_dir = r.model_dir;
    result.info = {{"steps", r.step}, {"resumed_from", r.resumed_from}, {"last_metrics", r.last_metrics}};
    return result;
  }

 private:
  grpo::GrpoOptions opts_;
  bool explicit_seed_;
  int64_t eval_every_, eval_limit_;
};

}  // namespace

std::unique_ptr<Stage> parse_grpo_stage(ConfigNode& node, const RecipeSettings&) {
  const bool explicit_seed = node.has("seed");
  int64_t eval_every = 0, eval_limit = 200;
  node.read("eval_every", eval_every);
  node.read("eval_limit", eval_limit);
  if (eval_every < 0) node.fail("eval_every", "must be >= 0");
  if (eval_limit < 0) node.fail("eval_limit", "must be >= 0");
  return std::make_unique<GrpoStage>(grpo::read_grpo_options(node), explicit_seed, eval_every, eval_limit);
}

}  // namespace r1kit::recipes
