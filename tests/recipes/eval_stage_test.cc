// The eval stage with k samples per problem: after a short SFT of the tiny R1-Zero task model, an
// `eval` stage with samples: 8 at T 0.6 / top-p 0.95 writes pass@k / maj@k for k = 1..8, the
// per-problem file, report.md and both plots; pass@k is non-decreasing in k and bounded by 1.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/fs.h"
#include "core/json.h"
#include "recipes/runner.h"

using namespace r1kit;
using namespace r1kit::recipes;
namespace fs = std::filesystem;

namespace {
const char* kRecipe = R"(# eval stage test
name: eval_k8
seed: 5
model:
  create: {hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, intermediate_size: 64}
data:
  kind: tiny_chain
  tiny_chain: {n_ops: 2, n_heldout: 12}
stages:
  - name: sft
    kind: sft
    steps: 6
    batch_size: 8
    warmup_steps: 1
    log_every: 0
  - name: eval_k8
    kind: eval
    samples: 8
    temperature: 0.6
    top_p: 0.95
    max_new_tokens: 12
)";
}  // namespace

TEST(EvalStage, EightSamplesWriteReportPlotsAndPassAtK) {
  const std::string dir = testing::TempDir() + "/eval_stage_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir + "/r.yaml") << kRecipe;
  Recipe recipe = load_recipe(dir + "/r.yaml");
  RunOptions opts;
  opts.run_dir = dir + "/run";
  opts.print_table = false;
  run_recipe(recipe, opts);
  const std::string st = opts.run_dir + "/eval_k8";
  for (const char* f : {"/eval.json", "/samples.jsonl", "/report.md", "/heldout/samples.jsonl", "/heldout/problems.jsonl",
                        "/heldout/summary.json", "/heldout/plots/pass_at_k.svg", "/heldout/plots/response_length.svg"})
    EXPECT_TRUE(fs::exists(st + f)) << f;
  const json eval = parse_json(read_file(st + "/eval.json"), "eval.json");
  ASSERT_TRUE(eval.contains("metrics"));
  const json& m = eval["metrics"];
  double prev = -1;
  for (const char* k : {"pass@1", "pass@2", "pass@4", "pass@8"}) {
    ASSERT_TRUE(m.contains(k)) << k;
    const double v = m[k]["mean"].get<double>();
    EXPECT_GE(v, prev - 1e-12) << k;
    EXPECT_LE(v, 1.0) << k;
    EXPECT_EQ(m[k]["problems"], 12);
    prev = v;
  }
  for (const char* k : {"maj@1", "maj@2", "maj@4", "maj@8"}) EXPECT_TRUE(m.contains(k)) << k;
  // pass@1 is the stage's accuracy (mean over all 96 samples).
  EXPECT_NEAR(m["pass@1"]["mean"].get<double>(), eval["accuracy"].get<double>(), 1e-12);
  const std::string md = read_file(st + "/report.md");
  EXPECT_NE(md.find("| pass@8 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| maj@8 |"), std::string::npos) << md;
  std::printf("%s", md.c_str());
}

// `benchmark: gsm8k` mode (plumbing, with an untrained model): problems from ../shared/data, k samples
// plus a greedy one, the benchmark's report and plots. Skips without ../shared.
TEST(EvalStage, BenchmarkModeWritesTheBenchmarkReport) {
  const std::string gsm8k = std::string(R1_SHARED_DIR) + "/data/gsm8k/test.jsonl";
  if (!fs::exists(gsm8k)) GTEST_SKIP() << "missing " << gsm8k;
  const std::string dir = testing::TempDir() + "/eval_stage_bench_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir + "/r.yaml") << R"(name: bench
seed: 2
model:
  create: {hidden_size: 32, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 2, intermediate_size: 64, max_position_embeddings: 2048}
data:
  kind: tiny_chain
  tiny_chain: {n_ops: 2, n_heldout: 8}
stages:
  - name: eval_gsm8k
    kind: eval
    benchmark: gsm8k
    samples: 4
    max_new_tokens: 8
    limit: 3
    greedy: true
)";
  Recipe recipe = load_recipe(dir + "/r.yaml");
  RunOptions opts;
  opts.run_dir = dir + "/run";
  opts.print_table = false;
  run_recipe(recipe, opts);
  const std::string st = opts.run_dir + "/eval_gsm8k";
  for (const char* f : {"/report.md", "/eval.json", "/gsm8k/summary.json", "/gsm8k/problems.jsonl", "/gsm8k/plots/pass_at_k.svg"})
    EXPECT_TRUE(fs::exists(st + f)) << f;
  const json s = parse_json(read_file(st + "/gsm8k/summary.json"), "summary.json");
  EXPECT_EQ(s["problems"], 3);
  EXPECT_EQ(s["samples"], 12);
  EXPECT_EQ(s["settings"]["k"], 4);
  EXPECT_DOUBLE_EQ(s["settings"]["temperature"].get<double>(), 0.6);  // the r1 preset
  EXPECT_TRUE(s["metrics"].contains("greedy"));
  EXPECT_TRUE(s["metrics"].contains("maj@4"));
}
