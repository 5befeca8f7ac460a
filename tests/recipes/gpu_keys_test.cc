// Recipe keys of the GPU path and prompt formatting: device cuda:N, autocast, activation_checkpointing,
// data.chat / system_prompt / chat_template; bad values name the file and key, and a chat recipe whose
// model has no chat template fails at the stage naming tokenizer_config.json.
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <filesystem>
#include <fstream>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "recipes/runner.h"
#include "recipes/stages.h"
#include "recipes/tiny_model.h"

namespace r1kit::recipes {
namespace {

const char* kRecipe = R"(name: gpu_keys
seed: 3
model:
  create: {hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, intermediate_size: 64}
data:
  kind: tiny_chain
  tiny_chain: {n_ops: 2, n_heldout: 4}
stages:
  - name: eval
    kind: eval
    max_new_tokens: 4
)";

std::string write_recipe(const std::string& name) {
  const std::string dir = testing::TempDir() + "/gpu_keys_" + name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/r.yaml") << kRecipe;
  return dir + "/r.yaml";
}

std::string load_error(const std::vector<std::string>& overrides) {
  try {
    load_recipe(write_recipe("bad"), overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

#define EXPECT_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "message: " << (msg)

TEST(RecipeGpuKeys, ParseIntoSettings) {
  const Recipe r = load_recipe(write_recipe("ok"), {"device=cuda:1", "dtype=float32", "autocast=true",
                                                    "activation_checkpointing=true", "data.chat=true",
                                                    "data.system_prompt=Be brief.", "data.chat_template=qwen2.5"});
  EXPECT_EQ(r.settings.device, "cuda:1");
  EXPECT_TRUE(r.settings.autocast);
  EXPECT_TRUE(recipe_compute(r.settings).activation_checkpointing);
  EXPECT_TRUE(r.settings.data.prompt_format.chat);
  EXPECT_EQ(r.settings.data.prompt_format.system_prompt, "Be brief.");
  EXPECT_EQ(r.settings.data.prompt_format.chat_template, "qwen2.5");
  // A GPU recipe validates anywhere; asking for the device on a machine without it names the key.
  if (!torch::cuda::is_available()) {
    try {
      recipe_device(r.settings);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_HAS(std::string(e.what()), "r.yaml: key 'device': 'cuda:1' asks for a GPU");
    }
  }
}

TEST(RecipeGpuKeys, BadValuesAreNamed) {
  EXPECT_HAS(load_error({"device=cuda:x"}), "key 'device': 'cuda:x' is not cpu, cuda or cuda:N");
  EXPECT_HAS(load_error({"autocast=true"}), "key 'autocast': needs dtype: float32");
  EXPECT_HAS(load_error({"data.system_prompt=x"}), "key 'data.system_prompt': needs chat: true");
  EXPECT_HAS(load_error({"data.chat=true", "data.chat_template=llama9"}), "key 'data.chat_template': unknown template 'llama9'");
}

TEST(RecipeGpuKeys, ChatWithoutATemplateFailsAtTheStageNamingTheFile) {
  // r1kit's tiny tokenizer ships the plain template (chat SFT records need one): drop it here.
  const std::string model = testing::TempDir() + "/gpu_keys_chat_model";
  std::filesystem::remove_all(model);
  TinyModelOptions o;
  o.hidden_size = 32, o.num_hidden_layers = 1, o.num_attention_heads = 2, o.num_key_value_heads = 2;
  o.intermediate_size = 64;
  create_tiny_model(o, 3, model);
  json cfg = parse_json(read_file(model + "/tokenizer_config.json"), "tokenizer_config.json");
  cfg.erase("chat_template");
  write_file_atomic(model + "/tokenizer_config.json", cfg.dump(2));
  const std::string path = write_recipe("chat");
  std::string text = kRecipe;
  const std::string create_line = text.substr(text.find("  create:"), text.find('\n', text.find("  create:")) - text.find("  create:"));
  text.replace(text.find(create_line), create_line.size(), "  path: " + model);
  std::ofstream(path) << text;
  Recipe r = load_recipe(path, {"data.chat=true"});
  RunOptions opts;
  opts.run_dir = testing::TempDir() + "/gpu_keys_chat_run";
  opts.print_table = false;
  std::filesystem::remove_all(opts.run_dir);
  try {
    run_recipe(r, opts);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_HAS(std::string(e.what()), "tokenizer_config.json: missing chat_template");
  }
}

}  // namespace
}  // namespace r1kit::recipes
