// The distillation recipes and stages: the shipped recipes (tiny and real-checkpoint) validate;
// KD refuses teachers with another vocabulary or no checkpoint, naming the files; KD on packed rows
// equals KD on the unpacked batch; and a small recipe runs every distillation stage kind end to end
// (rejection sampling -> SFT on chat records, KD and on-policy distillation packed) with the KD and
// on-policy losses going down.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "distill/kd_trainer.h"
#include "model/checkpoint.h"
#include "model/tokenizer.h"
#include "recipes/runner.h"
#include "recipes/tiny_model.h"
#include "recipes/tiny_task.h"
#include "sft/sft_packing.h"
#include "tests/test_util.h"

namespace r1kit::recipes {
namespace {

namespace fs = std::filesystem;

#define EXPECT_ERROR_HAS(msg, part) EXPECT_NE((msg).find(part), std::string::npos) << "error was: " << (msg)

template <typename F>
void expect_error_has(F&& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing: " << part;
  } catch (const Error& e) {
    EXPECT_ERROR_HAS(std::string(e.what()), part);
  }
}

std::string temp_dir(const std::string& name) {
  const std::string d = testing::TempDir() + "/distill_stages_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::vector<std::string> kinds_of(const Recipe& r) {
  std::vector<std::string> kinds;
  for (const auto& s : r.stages) kinds.push_back(s.kind);
  return kinds;
}

const std::string kRecipes = std::string(R1_SOURCE_DIR) + "/recipes/";

TEST(DistillRecipes, TinyRecipesValidate) {
  const Recipe d = load_recipe(kRecipes + "tiny-distill.yaml");
  EXPECT_EQ(d.settings.name, "tiny-distill");
  EXPECT_EQ(kinds_of(d), (std::vector<std::string>{"sft", "eval", "grpo", "eval", "rejection_sampling", "init_model",
                                                    "sft", "eval", "sft", "eval"}));
  EXPECT_EQ(d.headline, (json{{"teacher", "eval_grpo"}, {"student", "eval_student"}, {"baseline", "eval_baseline"}}));
  const Recipe r = load_recipe(kRecipes + "tiny-r1.yaml");
  EXPECT_EQ(kinds_of(r), (std::vector<std::string>{"sft", "eval", "grpo", "eval", "rejection_sampling", "sft", "eval",
                                                    "grpo", "eval"}));
  // The base recipe's stages were merged by name: tiny-r1's grpo has the language reward.
  EXPECT_EQ(r.resolved["stages"][2]["rewards"].size(), 3u);
  // tiny-r1-zero's eval_grpo_k8 is dropped by `enabled: false` in both derived recipes.
  for (const Recipe* x : {&d, &r})
    for (const auto& st : x->resolved["stages"]) {
      EXPECT_NE(st["name"], "eval_grpo_k8");
      EXPECT_FALSE(st.contains("enabled"));
    }
}

TEST(DistillRecipes, RealCheckpointRecipesValidateWithLocalPaths) {
  const std::string model = r1kit::test::shared_path("fixtures/tiny-qwen2");
  const std::string train = r1kit::test::shared_path("data/math_train/train.jsonl");
  const std::string test = r1kit::test::shared_path("data/math500/test.jsonl");
  R1_REQUIRE_FILE(model + "/config.json");
  R1_REQUIRE_FILE(train);
  for (const std::string name : {"r1.yaml", "distill.yaml"}) {
    try {  // as shipped they name /models/... directories this machine does not have
      load_recipe(kRecipes + name);
      FAIL() << name << ": expected a missing-model error";
    } catch (const Error& e) {
      EXPECT_ERROR_HAS(std::string(e.what()), name + ": key 'model.path'");
    }
  }
  const std::string nonreasoning = temp_dir("nonreasoning") + "/chat.jsonl";
  std::ofstream(nonreasoning) << R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]})"
                              << "\n";
  const Recipe r1 = load_recipe(kRecipes + "r1.yaml", {"model.path=" + model, "data.train_file=" + train,
                                                       "data.test_file=" + test, "data.nonreasoning_file=" + nonreasoning});
  EXPECT_EQ(kinds_of(r1), (std::vector<std::string>{"eval", "sft", "grpo", "eval", "rejection_sampling", "sft", "grpo",
                                                     "eval"}));
  const Recipe d = load_recipe(kRecipes + "distill.yaml", {"model.path=" + model, "student_init.path=" + model,
                                                          "data.train_file=" + train, "data.test_file=" + test});
  EXPECT_EQ(kinds_of(d), (std::vector<std::string>{"eval", "rejection_sampling", "init_model", "eval", "sft", "kd",
                                                    "eval"}));
  EXPECT_EQ(d.settings.device, "cuda");
}

TEST(DistillRecipes, StageReferencesMustBeEarlierStages) {
  const std::string dir = temp_dir("refs");
  std::ofstream(dir + "/bad.yaml") << R"(name: bad
model: {create: {hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, intermediate_size: 64}}
data: {kind: tiny_chain}
stages:
  - {name: sft, kind: sft, dataset: rs, steps: 1}
  - {name: rs, kind: rejection_sampling, prompts: 4}
)";
  try {
    load_recipe(dir + "/bad.yaml");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_ERROR_HAS(std::string(e.what()), "bad.yaml: key 'stages.sft.dataset'");
    EXPECT_ERROR_HAS(std::string(e.what()), "'rs' is not an earlier stage");
  }
}

TEST(DistillKd, TokenizerMismatchAndMissingTeacherAreNamed) {
  const std::string a = r1kit::test::shared_path("tokenizers/qwen3");
  const std::string b = r1kit::test::shared_path("tokenizers/deepseek_r1_distill_qwen");
  R1_REQUIRE_FILE(a + "/tokenizer.json");
  R1_REQUIRE_FILE(b + "/tokenizer.json");
  EXPECT_GT(distill::check_same_tokenizer(a, a), 1000);
  try {
    distill::check_same_tokenizer(a, b, "stage 'kd'");
    FAIL() << "expected a tokenizer mismatch";
  } catch (const Error& e) {
    const std::string msg = e.what();
    std::printf("mismatch: %s\n", msg.c_str());
    EXPECT_ERROR_HAS(msg, "stage 'kd': tokenizer mismatch");
    EXPECT_ERROR_HAS(msg, a + "/tokenizer.json");
    EXPECT_ERROR_HAS(msg, b + "/tokenizer.json");
  }
  const std::string empty = temp_dir("no_teacher");
  expect_error_has([&] { distill::check_same_tokenizer(a, empty, "kd"); }, "teacher tokenizer not found: " + empty);
  expect_error_has([&] { distill::load_teacher(empty + "/missing", torch::kCPU, torch::kFloat32); },
                   "teacher model not found: " + empty + "/missing");
}

// KD on packed rows (sft/sft_packing.h): the student and the teacher both run the packed forward, so
// the loss and the student's gradients equal those of the unpacked batch.
TEST(DistillKd, PackedBatchGivesTheUnpackedLossAndGradients) {
  const std::string dir = temp_dir("kd_packed");
  TinyModelOptions small;
  small.hidden_size = 32;
  small.num_hidden_layers = 2;
  small.num_attention_heads = 2;
  small.num_key_value_heads = 1;
  small.intermediate_size = 64;
  create_tiny_model(small, 1, dir + "/student");
  create_tiny_model(small, 2, dir + "/teacher");
  Transformer student = load_model(dir + "/student", nullptr, torch::kCPU, torch::kFloat32);
  Transformer teacher = distill::load_teacher(dir + "/teacher", torch::kCPU, torch::kFloat32);
  const Tokenizer tok = Tokenizer::from_file(dir + "/student");
  const int64_t eos = tok.token_to_id("<eos>");
  const TinyTask task;
  std::mt19937_64 rng(4);
  std::vector<sft::SftExample> examples;  // reasoning traces and short non-reasoning records: lengths vary
  for (int i = 0; i < 12; ++i)
    examples.push_back(sft::encode_sft_example(tok, i % 3 ? task.sft_example(rng) : task.nonreasoning_example(rng), {},
                                               eos, "rec" + std::to_string(i)));
  distill::KdTrainOptions o;
  o.kd.loss = "jsd";
  o.kd.top_k = 8;
  o.ce_weight = 0.5;
  o.loss_chunk = 16;
  auto run = [&](const sft::SftBatch& batch, double normalizer) {
    for (auto& p : student->parameters()) p.mutable_grad() = torch::Tensor();
    const double loss = distill::kd_loss_backward(student, teacher, batch, normalizer, o);
    std::vector<torch::Tensor> g;
    for (auto& p : student->parameters()) g.push_back(p.grad().clone());
    return std::make_pair(loss, g);
  };
  const sft::SftBatch plain = sft::collate_sft(examples, eos);
  const sft::SftBatch packed = sft::collate_packed(examples, sft::pack_sft_examples(examples, 96), eos);
  ASSERT_LT(packed.input_ids.size(0), plain.input_ids.size(0));
  const double n = double(plain.num_target_tokens);
  const auto [lu, gu] = run(plain, n);
  const auto [lp, gp] = run(packed, n);
  double rel = 0;
  for (size_t i = 0; i < gu.size(); ++i)
    rel = std::max(rel, (gp[i] - gu[i]).abs().max().item<double>() / gu[i].abs().max().item<double>());
  std::printf("KD (jsd, top-8, + 0.5 CE) packed (%lld rows) vs unpacked (%lld rows): loss %.8f vs %.8f, max gradient "
              "diff / max |gradient| %.2e\n", (long long)packed.input_ids.size(0), (long long)plain.input_ids.size(0),
              lp / n, lu / n, rel);
  EXPECT_LE(std::abs(lp - lu) / lu, 1e-6);
  EXPECT_LE(rel, 2e-6);
}

// Every distillation stage kind on a very small model, in one run.
TEST(DistillStages, SmallRecipeRunsEveryStageKind) {
  const std::string dir = temp_dir("run");
  std::ofstream(dir + "/r.yaml") << R"(name: small-distill
seed: 5
threads: 1
model: {create: {hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2, intermediate_size: 128}}
data: {kind: tiny_chain, tiny_chain: {n_ops: 2, n_heldout: 16, bug_probability: 0}}
headline: {teacher: eval_teacher, student: eval_student}
stages:
  - {name: sft, kind: sft, steps: 60, batch_size: 32, lr: 3.0e-3, warmup_steps: 5, log_every: 30}
  - {name: eval_teacher, kind: eval, max_new_tokens: 12}
  - name: rs
    kind: rejection_sampling
    prompts: 24
    samples_per_prompt: 4
    keep_per_prompt: 2
    max_new_tokens: 12
    chunk_prompts: 8
    filters: {language: false}
    mix: {ratio: 0.5}
  - name: student_init
    kind: init_model
    create: {hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2, intermediate_size: 64}
  - {name: student, kind: sft, input: student_init, dataset: rs, chat_template: plain, steps: 10, batch_size: 8, lr: 3.0e-3}
  - {name: kd, kind: kd, teacher: sft, dataset: rs, chat_template: plain, loss: jsd, beta: 0.5, top_k: 8, steps: 12, batch_size: 8, lr: 3.0e-3, packing: true}
  - {name: opd, kind: on_policy_distill, teacher: sft, steps: 6, prompts_per_step: 4, samples_per_prompt: 2, lr: 1.0e-3, max_new_tokens: 12, packing: true}
  - {name: eval_student, kind: eval, max_new_tokens: 12}
)";
  Recipe recipe = load_recipe(dir + "/r.yaml");
  RunOptions opts;
  opts.run_dir = dir + "/run";
  opts.print_table = false;
  const json summary = run_recipe(recipe, opts);
  // Rejection sampling: stats with per-reason counts, chat records with provenance, mixed records.
  const json stats = parse_json(read_file(opts.run_dir + "/rs/stats.json"), "stats.json");
  EXPECT_EQ(stats["samples"].get<int64_t>(), 24 * 4);
  EXPECT_TRUE(stats["rejected"].is_object());
  int64_t generated = 0, mixed = 0;
  for_each_jsonl(opts.run_dir + "/rs/data.jsonl", [&](const json& rec, int) {
    ASSERT_TRUE(rec.contains("messages"));
    if (rec.contains("prompt_id")) {
      ++generated;
      EXPECT_EQ(rec["messages"].back()["role"], "assistant");
      EXPECT_EQ(rec["rewards"]["correctness"].get<double>(), 1.0);
    } else {
      ++mixed;
    }
  });
  EXPECT_GT(generated, 0);
  EXPECT_EQ(generated, stats["kept"].get<int64_t>());
  EXPECT_EQ(mixed, stats["mixed_nonreasoning"].get<int64_t>());
  // The KD and on-policy losses fell.
  for (const std::string stage : {"kd", "opd"}) {
    std::vector<double> losses;
    for_each_jsonl(opts.run_dir + "/" + stage + "/metrics.jsonl",
                   [&](const json& rec, int) { losses.push_back(rec["loss"].get<double>()); });
    ASSERT_GE(losses.size(), 4u) << stage;
    const double first = (losses[0] + losses[1]) / 2, last = (losses[losses.size() - 1] + losses[losses.size() - 2]) / 2;
    std::printf("%s loss %.4f -> %.4f\n", stage.c_str(), first, last);
    EXPECT_LT(last, first) << stage;
  }
  ASSERT_TRUE(summary.contains("headline"));
  EXPECT_TRUE(summary["headline"].contains("teacher") && summary["headline"].contains("student"));
  // The table names the headline's models instead of a before -> after line between two of them.
  const std::string table = format_summary(summary);
  EXPECT_NE(table.find("student "), std::string::npos) << table;
  EXPECT_EQ(table.find("held-out accuracy: "), std::string::npos) << table;
}

}  // namespace
}  // namespace r1kit::recipes
