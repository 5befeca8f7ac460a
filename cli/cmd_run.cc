// `r1kit run RECIPE.(yaml|json) [--out RUN_DIR] [key=value ...]`: runs a multi-stage recipe (SFT,
// GRPO, evaluation) into RUN_DIR (default runs/<recipe name>), skipping finished stages and
// resuming an interrupted one; prints the summary table and the before/after held-out accuracy.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "recipes/runner.h"

namespace {

struct RunArgs {
  std::string recipe;
  std::string out;
  std::vector<std::string> overrides;
  bool check_only = false;
};

r1kit::cli::Registrar reg{
    "run", "run a recipe (stages: sft, grpo, eval) into a run directory; re-running resumes",
    [](CLI::App& sub) -> std::function<int()> {
      auto args = std::make_shared<RunArgs>();
      sub.add_option("recipe", args->recipe, "recipe file (.yaml, .yml or .json), e.g. recipes/tiny-r1-zero.yaml")
          ->required();
      sub.add_option("overrides", args->overrides,
                     "key=value overrides: a stage's keys by stage name (grpo.steps=40), others by path (seed=2)");
      sub.add_option("--out", args->out, "run directory (default runs/<recipe name>)");
      sub.add_flag("--check", args->check_only, "validate the recipe (all stages, all keys) and exit");
      return [args]() -> int {
        r1kit::recipes::Recipe recipe = r1kit::recipes::load_recipe(args->recipe, args->overrides);
        if (args->check_only) {
          std::printf("%s: ok (%zu stages)\n", args->recipe.c_str(), recipe.stages.size());
          return 0;
        }
        r1kit::recipes::RunOptions opts;
        opts.run_dir = args->out;
        r1kit::recipes::run_recipe(recipe, opts);
        return 0;
      };
    }};

}  // namespace
