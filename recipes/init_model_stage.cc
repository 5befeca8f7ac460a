// The `init_model` stage: a model to start later stages from, other than the recipe's `model`:
// a fresh tiny Qwen2-shaped model (e.g. a distillation student half the teacher's width), or an
// HF checkpoint directory (e.g. a small pretrained student). Later stages use it with `input:`.
//
//   - name: student_init
//     kind: init_model
//     create: {hidden_size: 96, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 4,
//              intermediate_size: 256}          # recipes/tiny_model.h keys; or
//     path: /models/Qwen2.5-0.5B                  # a checkpoint (used in place, not copied)
#include "core/fs.h"
#include "core/logging.h"
#include "recipes/stages.h"
#include "recipes/tiny_model.h"

namespace r1kit::recipes {
namespace {

class InitModelStage : public Stage {
 public:
  InitModelStage(std::string path, json create) : path_(std::move(path)), create_(std::move(create)) {}

  StageResult run(const StageEnv& env) override {
    StageResult result;
    if (!path_.empty()) {
      R1_CHECK(path_exists(path_ + "/config.json"), "stage '", env.name, "': model not found: ", path_,
               "/config.json does not exist");
      result.model_dir = path_;
      return result;
    }
    const std::string dir = env.stage_dir + "/model";
    if (!path_exists(dir + "/config.json")) {
      ConfigNode create(create_, env.recipe->file, "stages." + env.name + ".create");
      create_tiny_model(read_tiny_model_options(create), env.seed, dir);
    }
    spdlog::info("init_model '{}': fresh model in {}", env.name, dir);
    result.model_dir = dir;
    return result;
  }

 private:
  std::string path_;
  json create_;
};

}  // namespace

std::unique_ptr<Stage> parse_init_model_stage(ConfigNode& node, const RecipeSettings&) {
  std::string path;
  json create;
  node.read("path", path);
  if (node.has("create")) {
    ConfigNode c = node.child("create");
    read_tiny_model_options(c);  // validates now
    create = c.raw();
  }
  node.finish();
  if (path.empty() == create.is_null())
    node.fail(path.empty() ? "path" : "create", "give exactly one of 'path' (an HF checkpoint) and 'create'");
  return std::make_unique<InitModelStage>(path, create);
}

}  // namespace r1kit::recipes
