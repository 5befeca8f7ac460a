// The recipe runner: validation errors name the file and key, overrides reach stages, the shipped
// recipes validate, and a run writes DONE markers and summary.json, skips finished stages on a
// re-run and re-runs only unfinished ones.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/check.h"
#include "core/fs.h"
#include "recipes/runner.h"
#include "tests/test_util.h"

namespace r1kit::recipes {
namespace {

namespace fs = std::filesystem;

std::string temp_dir(const std::string& name) {
  const std::string d = testing::TempDir() + "/runner_test_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A fast recipe: a very small model, 4 SFT steps, two evaluations on 16 held-out problems.
const char* kSmallRecipe = R"(# test recipe
name: small
seed: 3
model:
  create: {hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, intermediate_size: 64}
data:
  kind: tiny_chain
  tiny_chain: {n_ops: 2, n_heldout: 16}
stages:
  - name: eval_base
    kind: eval
    max_new_tokens: 12
  - name: sft
    kind: sft
    steps: 4
    batch_size: 8
    warmup_steps: 1
    log_every: 0
  - name: eval_sft
    kind: eval
    max_new_tokens: 12
)";

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// Loads `text` (a modification of kSmallRecipe) and returns the error message ("" when it loads).
std::string load_error(const std::string& text, const std::vector<std::string>& overrides = {}) {
  const std::string path = write(temp_dir("bad"), "bad.yaml", text);
  try {
    load_recipe(path, overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return s.replace(at, from.size(), to);
}

#define EXPECT_ERROR_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "error was: " << (msg)

TEST(RecipeParse, UnknownKeysAreNamedWithFileAndKeyPath) {
  const std::string small = kSmallRecipe;
  std::string e = load_error(replace(small, "    steps: 4", "    steps: 4\n    lrr: 0.1"));
  EXPECT_ERROR_HAS(e, "bad.yaml: unknown key 'stages.sft.lrr'");
  e = load_error(replace(small, "seed: 3", "sede: 3"));
  EXPECT_ERROR_HAS(e, "bad.yaml: unknown key 'sede'");
  e = load_error(replace(small, "n_ops: 2", "n_opz: 2"));
  EXPECT_ERROR_HAS(e, "unknown key 'data.tiny_chain.n_opz'");
  e = load_error(replace(small, "hidden_size: 32", "hidden: 32"));
  EXPECT_ERROR_HAS(e, "unknown key 'model.create.hidden'");
  e = load_error(small, {"eval_sft.temprature=1"});
  EXPECT_ERROR_HAS(e, "unknown key 'stages.eval_sft.temprature'");
}

TEST(RecipeParse, BadValuesAreNamed) {
  const std::string small = kSmallRecipe;
  EXPECT_ERROR_HAS(load_error(replace(small, "steps: 4", "steps: -4")), "key 'stages.sft.steps': must be >= 1");
  EXPECT_ERROR_HAS(load_error(replace(small, "steps: 4", "steps: four")), "key 'stages.sft.steps': expected an integer");
  EXPECT_ERROR_HAS(load_error(replace(small, "kind: sft", "kind: ppo")), "unknown stage kind 'ppo' (known: sft, grpo, eval");
  EXPECT_ERROR_HAS(load_error(small, {"eval_sft.temperature=-1"}), "temperature");
  EXPECT_ERROR_HAS(load_error(small, {"eval_sft.reward=no_such_reward"}), "no_such_reward");
  EXPECT_ERROR_HAS(load_error(small, {"dtype=int8"}), "key 'dtype': 'int8' is not one of");
  EXPECT_ERROR_HAS(load_error(small, {"device=tpu"}), "key 'device'");
  EXPECT_ERROR_HAS(load_error(small, {"data.tiny_chain.bug_probability=1.5"}), "data.tiny_chain.bug_probability");
  EXPECT_ERROR_HAS(load_error(small, {"model.path=/nonexistent"}), "model.path");
  EXPECT_ERROR_HAS(load_error(replace(small, "name: eval_sft", "name: sft")), "duplicate stage name 'sft'");
  EXPECT_ERROR_HAS(load_error(replace(small, "    kind: sft", "    kind: sft\n    input: eval_sft")),
                   "key 'stages.sft.input': 'eval_sft' is not an earlier stage");
  EXPECT_ERROR_HAS(load_error(small, {"nosuch.steps=3"}), "'nosuch' is neither a stage name nor a top-level key");
  EXPECT_ERROR_HAS(load_error("name: x\nmodel: {create: {}}\nstages: []\n"), "'stages' must be a non-empty list");
  // Sequence packing keys of the SFT stages.
  EXPECT_ERROR_HAS(load_error(small, {"sft.packing=3"}), "key 'stages.sft.packing': expected a boolean");
  EXPECT_ERROR_HAS(load_error(small, {"sft.packing=true", "sft.packing_length=long"}),
                   "key 'stages.sft.packing_length': expected an integer");
  EXPECT_ERROR_HAS(load_error(small, {"sft.packing=true", "sft.packing_length=-5"}),
                   "key 'stages.sft.packing_length': must be >= 0");
  EXPECT_ERROR_HAS(load_error(small, {"sft.packing_length=64"}),
                   "key 'stages.sft.packing_length': is set but packing is off");
  EXPECT_ERROR_HAS(load_error(small, {"sft.packng=true"}), "unknown key 'stages.sft.packng'");
  EXPECT_EQ(load_error(small, {"sft.packing=true", "sft.packing_length=64"}), "");
}

TEST(RecipeParse, OverridesReachStagesAndTopLevel) {
  const std::string path = write(temp_dir("ovr"), "small.yaml", kSmallRecipe);
  const Recipe r = load_recipe(path, {"sft.steps=7", "seed=9", "data.tiny_chain.n_ops=3"});
  EXPECT_EQ(r.resolved["stages"][1]["steps"], 7);
  EXPECT_EQ(r.settings.seed, 9u);
  EXPECT_EQ(r.settings.data.tiny.n_ops, 3);
  ASSERT_EQ(r.stages.size(), 3u);
  EXPECT_EQ(r.stages[1].name, "sft");
  EXPECT_EQ(r.stages[1].kind, "sft");
}

TEST(RecipeParse, EnabledFalseOverrideDropsAStage) {
  const std::string path = write(temp_dir("ovr_enabled"), "small.yaml", kSmallRecipe);
  const Recipe r = load_recipe(path, {"eval_sft.enabled=false"});
  ASSERT_EQ(r.stages.size(), 2u);
  for (const auto& s : r.stages) EXPECT_NE(s.name, "eval_sft");
  EXPECT_ERROR_HAS(load_error(kSmallRecipe, {"eval_sft.enabled=maybe"}), "key 'enabled' must be true or false");
}

TEST(RecipeParse, EnabledTrueBringsBackADisabledStage) {
  const std::string dir = temp_dir("ovr_reenable");
  const std::string path =
      write(dir, "small.yaml", replace(kSmallRecipe, "  - name: eval_sft\n", "  - name: eval_sft\n    enabled: false\n"));
  EXPECT_EQ(load_recipe(path).stages.size(), 2u);
  const Recipe on = load_recipe(path, {"eval_sft.enabled=true"});  // the command line
  ASSERT_EQ(on.stages.size(), 3u);
  EXPECT_EQ(on.stages[2].name, "eval_sft");
  EXPECT_EQ(on.stages[2].kind, "eval");
  const std::string derived = write(dir, "derived.yaml", "base: small.yaml\nstages:\n  - name: eval_sft\n    enabled: true\n");
  const Recipe d = load_recipe(derived);  // a derived recipe
  ASSERT_EQ(d.stages.size(), 3u);
  EXPECT_EQ(d.stages[2].name, "eval_sft");
  EXPECT_EQ(load_recipe(derived, {"eval_sft.enabled=false"}).stages.size(), 2u);
}

TEST(RecipeParse, ShippedTinyRecipeValidates) {
  const Recipe r = load_recipe(std::string(R1_SOURCE_DIR) + "/recipes/tiny-r1-zero.yaml");
  std::vector<std::string> kinds;
  for (const auto& s : r.stages) kinds.push_back(s.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{"sft", "eval", "grpo", "eval", "eval"}));
  EXPECT_EQ(r.settings.name, "tiny-r1-zero");
}

TEST(RecipeParse, ShippedQwenRecipeValidatesWithLocalPaths) {
  const std::string model = r1kit::test::shared_path("fixtures/tiny-qwen2");
  const std::string train = r1kit::test::shared_path("data/gsm8k/train.jsonl");
  const std::string test = r1kit::test::shared_path("data/gsm8k/test.jsonl");
  R1_REQUIRE_FILE(model + "/config.json");
  R1_REQUIRE_FILE(train);
  const std::string recipe = std::string(R1_SOURCE_DIR) + "/recipes/qwen2.5-r1-zero-gsm8k.yaml";
  // As shipped it points at a model directory this machine does not have: the error names the key.
  try {
    load_recipe(recipe);
    FAIL() << "expected a missing-model error";
  } catch (const Error& e) {
    EXPECT_ERROR_HAS(std::string(e.what()), "qwen2.5-r1-zero-gsm8k.yaml: key 'model.path'");
  }
  const Recipe r = load_recipe(recipe, {"model.path=" + model, "data.train_file=" + train, "data.test_file=" + test});
  EXPECT_EQ(r.settings.device, "cuda");
  EXPECT_EQ(r.settings.model_path, model);
  std::vector<std::string> kinds;
  for (const auto& s : r.stages) kinds.push_back(s.kind);
  EXPECT_EQ(kinds, (std::vector<std::string>{"eval", "grpo", "eval"}));
}

std::string slurp(const std::string& p) { return read_file(p); }

TEST(RecipeRun, WritesSummarySkipsFinishedStagesAndRerunsUnfinishedOnes) {
  const std::string dir = temp_dir("run");
  const std::string path = write(dir, "small.yaml", kSmallRecipe);
  const std::string run_dir = dir + "/run";
  Recipe recipe = load_recipe(path);
  RunOptions opts;
  opts.run_dir = run_dir;
  opts.print_table = false;
  const json summary = run_recipe(recipe, opts);

  // summary.json: every stage with name, kind, seconds; eval stages with accuracy and n.
  const json on_disk = parse_json(slurp(run_dir + "/summary.json"), "summary.json");
  EXPECT_EQ(on_disk, summary);
  ASSERT_EQ(summary["stages"].size(), 3u);
  const std::vector<std::pair<std::string, std::string>> want = {{"eval_base", "eval"}, {"sft", "sft"}, {"eval_sft", "eval"}};
  for (size_t i = 0; i < want.size(); ++i) {
    const json& st = summary["stages"][i];
    EXPECT_EQ(st["name"], want[i].first);
    EXPECT_EQ(st["kind"], want[i].second);
    EXPECT_GE(st["seconds"].get<double>(), 0.0);
    EXPECT_EQ(st.contains("eval"), want[i].second == "eval");
    if (st.contains("eval")) {
      EXPECT_EQ(st["eval"]["n"], 16);
      EXPECT_GE(st["eval"]["accuracy"].get<double>(), 0.0);
      EXPECT_LE(st["eval"]["accuracy"].get<double>(), 1.0);
    }
  }
  for (const char* f : {"/base_model/config.json", "/base_model/tokenizer.json", "/sft/DONE", "/sft/model/config.json",
                        "/sft/model/tokenizer.json", "/sft/metrics.jsonl", "/eval_sft/eval.json",
                        "/eval_sft/samples.jsonl", "/plots/loss_sft.svg", "/plots/heldout_accuracy.svg"})
    EXPECT_TRUE(fs::exists(run_dir + f)) << f;
  EXPECT_FALSE(fs::exists(run_dir + "/sft/checkpoint"));
  // The eval stage after SFT started from SFT's model.
  const json done_eval = parse_json(slurp(run_dir + "/eval_sft/DONE"), "DONE");
  EXPECT_EQ(done_eval["input_model"], "sft/model");
  const std::string table = format_summary(summary);
  EXPECT_ERROR_HAS(table, "held-out accuracy: ");
  EXPECT_ERROR_HAS(table, "(eval_base) -> ");

  // Re-run: everything is skipped, nothing is rewritten, the summary is the same.
  const std::string sft_done = slurp(run_dir + "/sft/DONE"), metrics = slurp(run_dir + "/sft/metrics.jsonl");
  const auto sft_time = fs::last_write_time(run_dir + "/sft/DONE");
  const auto eval_time = fs::last_write_time(run_dir + "/eval_sft/eval.json");
  Recipe again = load_recipe(path);
  EXPECT_EQ(run_recipe(again, opts)["stages"], summary["stages"]);
  EXPECT_EQ(fs::last_write_time(run_dir + "/sft/DONE"), sft_time);
  EXPECT_EQ(fs::last_write_time(run_dir + "/eval_sft/eval.json"), eval_time);
  EXPECT_EQ(slurp(run_dir + "/sft/metrics.jsonl"), metrics);

  // An unfinished stage (no DONE) runs again; the finished ones before it stay.
  fs::remove(run_dir + "/eval_sft/DONE");
  Recipe third = load_recipe(path);
  const json s3 = run_recipe(third, opts);
  EXPECT_EQ(slurp(run_dir + "/sft/DONE"), sft_done);
  EXPECT_TRUE(fs::exists(run_dir + "/eval_sft/DONE"));
  EXPECT_NE(fs::last_write_time(run_dir + "/eval_sft/eval.json"), eval_time);
  // Greedy evaluation of the same model gives the same accuracy.
  EXPECT_EQ(s3["stages"][2]["eval"], summary["stages"][2]["eval"]);

  // A finished stage whose kind changed in the recipe is an error, not a silent skip.
  const std::string changed = write(dir, "changed.yaml", replace(kSmallRecipe, "  - name: eval_base\n    kind: eval\n    max_new_tokens: 12",
                                                                 "  - name: eval_base\n    kind: sft\n    steps: 1"));
  Recipe mismatch = load_recipe(changed);
  try {
    run_recipe(mismatch, opts);
    FAIL() << "expected a kind mismatch error";
  } catch (const Error& e) {
    EXPECT_ERROR_HAS(std::string(e.what()), "finished as kind 'eval' but the recipe says 'sft'");
  }
}

}  // namespace
}  // namespace r1kit::recipes
