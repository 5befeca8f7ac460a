// The `grpo` stage: the GRPO trainer (grpo/trainer.h) on the task's training prompts, starting
// from the previous stage's model. Every key of grpo/grpo_options.h is accepted (rewards included);
// the stage's seed defaults to one derived from the recipe seed. The trainer checkpoints into
// RUN_DIR/<name>/checkpoints and resumes from them when the stage is re-run after an interruption.
// At the end the reward, accuracy and completion-length curves are printed.
#include <torch/torch.h>

#include <cstdio>
#include <iostream>

#include "core/logging.h"
#include "grpo/trainer.h"
#include "recipes/grpo_metrics.h"
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
  GrpoStage(grpo::GrpoOptions opts, bool explicit_seed) : opts_(std::move(opts)), explicit_seed_(explicit_seed) {}

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
    const grpo::GrpoResult r = grpo::run_grpo(o, env.stage_dir, in);
    R1_CHECK(r.finished, "grpo stage '", env.name, "' stopped at step ", r.step, " of ", o.steps);

    // The curves of the whole run (a resumed run included), per step.
    const std::string metrics = env.stage_dir + "/metrics.jsonl";
    std::string curves = curve_line("reward", read_metric(metrics, kGrpoRewardKey)) +
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
};

}  // namespace

std::unique_ptr<Stage> parse_grpo_stage(ConfigNode& node, const RecipeSettings&) {
  const bool explicit_seed = node.has("seed");
  return std::make_unique<GrpoStage>(grpo::read_grpo_options(node), explicit_seed);
}

}  // namespace r1kit::recipes
