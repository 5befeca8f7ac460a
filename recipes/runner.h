// The recipe runner: `r1kit run RECIPE.(yaml|json) [--out RUN_DIR] [key=value ...]`.
//
// A recipe is a list of stages run in order. Each stage reads the model of the stage before it
// (or of the stage named by its `input` key; the first reads the recipe's `model`), writes into
// RUN_DIR/<name>/, and marks itself finished with RUN_DIR/<name>/DONE (written atomically, holding
// the stage's kind, seconds, output model and evaluation). Re-running skips finished stages; an
// interrupted stage runs again and resumes from its own checkpoints (SFT and GRPO checkpoint).
// At the end RUN_DIR/summary.json {"stages": [{"name", "kind", "seconds", "eval"?}]} is written
// atomically and printed as a table, with the before/after held-out accuracy and the plots in
// RUN_DIR/plots/.
//
// The whole recipe (every stage's options) is validated before the first stage runs: unknown keys
// and bad values are Errors naming the recipe file and the key path ("stages.grpo.lr").
//
// Overrides: "a.b=v" sets key b of the stage named a when a is a stage name, else the top-level
// key path a.b ("seed=3", "model.path=/models/qwen", "grpo.steps=40", "sft.lr=1e-3").
//
// Inheritance: `base: other.yaml` (relative to the recipe's directory) starts from that recipe:
// its top-level mappings are merged key by key, other keys replaced; its stages come first, a
// stage with the same name as a base stage is merged into it (keys replaced, lists whole), new
// stages are appended. So tiny-distill runs tiny-r1-zero's stages as they are today, then its own.
//
// References: stage keys such as `teacher: grpo` or `dataset: rs` name an earlier stage (its
// model, or its data.jsonl) or, when they contain '/' or '.', a path; a name that is not an
// earlier stage is an Error at load time.
//
// Headline: `headline: {teacher: eval_grpo, student: eval_student, baseline: eval_baseline}` puts
// those evaluations' accuracies into summary.json ("headline": {"teacher": {"stage", "accuracy"}})
// and the printed table.
//
// Stage kinds live in one table (stage_kinds()); adding a kind is one entry there plus its source
// file.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "core/json.h"
#include "recipes/task.h"

namespace r1kit::recipes {

// Recipe-wide settings (top-level keys).
struct RecipeSettings {
  std::string name;                  // run name; default RUN_DIR is runs/<name>
  std::string file;                  // the recipe file (for messages)
  uint64_t seed = 1;                 // every stage derives its seeds from this
  std::string device = "cpu";        // "cpu" | "cuda" | "cuda:N"
  std::string dtype = "auto";        // "auto" (bf16 on CUDA, f32 on CPU) | "float32" | "bfloat16" | "float16"
  int threads = 0;                   // intra-op threads; 0 = all cores (or $R1_THREADS)
  bool autocast = false;             // bf16 autocast over float32 weights (use with dtype: float32; docs/gpu.md)
  bool activation_checkpointing = false;  // training stages recompute each layer in backward (less memory)
  // model: where the first stage's model comes from.
  std::string model_path;            // an HF checkpoint directory; or
  json model_create;                 // {hidden_size, ...}: a fresh Qwen2-shaped model with r1kit's tiny tokenizer
  TaskOptions data;                  // data: the task
};

// What a stage sees when it runs.
struct StageEnv {
  const RecipeSettings* recipe = nullptr;
  const Task* task = nullptr;
  std::string name;          // the stage's name
  std::string run_dir;
  std::string stage_dir;     // RUN_DIR/<name>, created
  std::string input_model;   // model directory to start from (HF layout, with tokenizer files)
  uint64_t seed = 0;         // recipe seed mixed with the stage index
  const std::map<std::string, std::string>* stage_models = nullptr;  // earlier stage -> its (or its kept) model
};

// A stage key's reference (see References above): an earlier stage's model directory, or a path
// (which must hold config.json). Errors name the stage and key.
std::string resolve_model_ref(const StageEnv& env, const std::string& key, const std::string& ref);
// An earlier stage's RUN_DIR/<name>/data.jsonl, or a path (which must exist).
std::string resolve_dataset_ref(const StageEnv& env, const std::string& key, const std::string& ref);
// Whether a reference names a path rather than a stage.
bool is_path_ref(const std::string& ref);

// What a finished stage reports (stored in its DONE marker).
struct StageResult {
  std::string model_dir;      // the model it produced ("" = none: later stages keep the previous one)
  json eval;                  // null, or {"accuracy", "n", ...} for evaluation stages
  json info = json::object();  // anything else worth keeping (final loss, steps, ...)
};

// A parsed, validated stage, ready to run.
class Stage {
 public:
  virtual ~Stage() = default;
  virtual StageResult run(const StageEnv& env) = 0;
  // (key, reference) pairs this stage reads from other stages; checked at load time.
  virtual std::vector<std::pair<std::string, std::string>> references() const { return {}; }
};

struct StageKind {
  std::string kind;  // value of the stage's `kind` key
  std::string help;  // one line
  // Reads and validates the stage's options (everything except name/kind/input) and calls
  // node.finish(); `recipe` has the top-level settings already read.
  std::function<std::unique_ptr<Stage>(ConfigNode& node, const RecipeSettings& recipe)> parse;
};

// The table of stage kinds: sft, grpo, eval.
const std::vector<StageKind>& stage_kinds();

struct PlannedStage {
  std::string name, kind, input;  // input: stage whose model this one starts from ("" = previous)
  std::unique_ptr<Stage> stage;
};

struct Recipe {
  RecipeSettings settings;
  json headline = json::object();   // label -> eval stage name
  json resolved;                    // the recipe after overrides (saved as RUN_DIR/recipe.json)
  std::vector<PlannedStage> stages;
};

// Loads, applies overrides and validates everything. Errors name the file and key.
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides = {});

struct RunOptions {
  std::string run_dir;       // "" = runs/<recipe name>
  bool print_table = true;   // print the summary table and accuracy line to stdout
};

// Runs (or resumes) the recipe; returns the summary JSON also written to RUN_DIR/summary.json.
json run_recipe(Recipe& recipe, const RunOptions& opts);

// The summary as a text table (and the before/after accuracy line when there are two evals).
std::string format_summary(const json& summary);

}  // namespace r1kit::recipes
