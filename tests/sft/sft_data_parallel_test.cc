// Data-parallel SFT on c10d/Gloo over loopback: 2 ranks (this binary re-executed as
// SftDataParallelWorker.Run with RANK/WORLD_SIZE/MASTER_* set, as torchrun would) give the loss,
// grad norm and parameters of 1 process with the same global batch, within 1e-5 over 5 steps
// (full model and LoRA), with gradient accumulation and a mid-run checkpoint; only rank 0 writes.
// With packing, each rank packs its own share and the 2 packed ranks equal 1 unpacked process.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/launcher.h"
#include "model/checkpoint.h"
#include "model/data_parallel.h"
#include "model/lora.h"
#include "tests/sft/tiny_sft.h"

namespace r1kit::sft {
namespace {

using namespace tiny;  // NOLINT: tests/sft/tiny_sft.h

SftOptions dp_options(bool lora, bool packing = false) {
  SftOptions o;
  o.packing = packing;
  o.packing_length = packing ? 160 : 0;  // 2-4 tiny-task examples per row; micro_batch_size counts rows
  o.steps = 5;
  o.batch_size = 8;        // 4 examples per rank
  o.micro_batch_size = 2;  // 2 accumulated micro-batches per rank, the same ones 1 process runs
  o.lr = 1e-3;
  o.min_lr = 1e-4;
  o.warmup_steps = 1;
  o.checkpoint_every = 2;  // barriers + rank 0's checkpoint in the middle of the run
  o.log_every = 0;
  o.tensorboard = false;
  if (lora) {
    o.lora.r = 4;
    o.lora.alpha = 8;
  }
  return o;
}

// Trains the tiny model in `run` (data parallel when the environment says so); rank 0 saves the
// final weights (LoRA merged) to run/final.
void train(const std::string& model_dir, const std::string& run, bool lora, int64_t batch_size = 0, bool packing = false) {
  ModelConfig cfg;
  Transformer model = load_model(model_dir, &cfg, torch::kCPU, torch::kFloat32);
  const Tokenizer tok = Tokenizer::from_file(model_dir);
  const int64_t eos = cfg.eos_token_ids.at(0);
  const DataParallel dp = DataParallel::from_env(torch::kCPU);
  torch::manual_seed(0);
  SftOptions o = dp_options(lora, packing);
  if (batch_size > 0) o.batch_size = batch_size;
  run_sft(model, tiny_source(tok, eos), o, run, eos, model_dir, dp);
  if (!dp.is_main()) return;
  if (lora) merge_lora(model);
  save_model(model, cfg, run + "/final");
}

std::string self_exe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  R1_CHECK(n > 0, "readlink /proc/self/exe failed");
  return std::string(buf, static_cast<size_t>(n));
}

TEST(SftDataParallelWorker, Run) {
  const char* run = std::getenv("R1_SFT_DP_RUN");
  if (!run) GTEST_SKIP() << "a rank of the data-parallel SFT test (started by it)";
  if (const char* batch = std::getenv("R1_SFT_DP_BATCH")) {  // a batch that does not split: refused
    try {
      train(std::getenv("R1_SFT_DP_MODEL"), run, false, std::atoll(batch));
      FAIL() << "batch_size " << batch << " on 2 ranks was accepted";
    } catch (const Error& e) {
      std::printf("refused: %s\n", e.what());
      EXPECT_NE(std::string(e.what()).find("must be a multiple of the data-parallel world size 2"), std::string::npos);
    }
    return;
  }
  const char* pack = std::getenv("R1_SFT_DP_PACK");
  train(std::getenv("R1_SFT_DP_MODEL"), run, std::string(std::getenv("R1_SFT_DP_LORA")) == "1", 0,
        pack != nullptr && std::string(pack) == "1");
}

std::vector<json> metrics_of(const std::string& run) {
  std::vector<json> out;
  for_each_jsonl(run + "/metrics.jsonl", [&](const json& rec, int) { out.push_back(rec); });
  return out;
}

double max_param_diff(const std::string& a_dir, const std::string& b_dir) {
  Transformer a = load_model(a_dir, nullptr, torch::kCPU, torch::kFloat32);
  Transformer b = load_model(b_dir, nullptr, torch::kCPU, torch::kFloat32);
  const auto pa = hf_state_dict(a), pb = hf_state_dict(b);
  R1_CHECK(pa.size() == pb.size(), "different models");
  double d = 0;
  for (size_t i = 0; i < pa.size(); ++i)
    d = std::max(d, (pa[i].second - pb[i].second).abs().max().item<double>());
  return d;
}

// `packing`: the two ranks pack their shares; the one process does not.
void two_ranks_equal_one_process(bool lora, bool packing = false) {
  const std::string name = std::string(lora ? "dp_lora" : "dp_full") + (packing ? "_packed" : "");
  const std::string root = fresh_dir(name);
  const std::string model_dir = small_model(name + "_model");
  train(model_dir, root + "/one", lora);

  LaunchOptions lo;
  lo.nproc = 2;
  lo.env = {{"R1_SFT_DP_MODEL", model_dir}, {"R1_SFT_DP_RUN", root + "/two"}, {"R1_SFT_DP_LORA", lora ? "1" : "0"},
            {"R1_SFT_DP_PACK", packing ? "1" : "0"}, {"R1_DIST_TIMEOUT_S", "120"}, {"OMP_NUM_THREADS", "1"}};
  lo.grace_s = 5;
  lo.timeout_s = 600;
  const std::vector<int> st =
      launch_ranks({self_exe(), "--gtest_filter=SftDataParallelWorker.Run"}, lo).wait_status;
  for (int s : st) ASSERT_TRUE(WIFEXITED(s) && WEXITSTATUS(s) == 0) << "rank status " << s;

  const std::vector<json> one = metrics_of(root + "/one"), two = metrics_of(root + "/two");
  ASSERT_EQ(one.size(), 5u);
  ASSERT_EQ(two.size(), 5u);  // rank 0 only: one line per step
  double loss_diff = 0, gnorm_diff = 0;
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(two[i]["step"], one[i]["step"]);
    EXPECT_EQ(two[i]["tokens"], one[i]["tokens"]);  // the global batch's target tokens
    loss_diff = std::max(loss_diff, std::fabs(two[i]["loss"].get<double>() - one[i]["loss"].get<double>()));
    gnorm_diff = std::max(gnorm_diff, std::fabs(two[i]["grad_norm"].get<double>() - one[i]["grad_norm"].get<double>()));
  }
  // Parameters: the step-4 checkpoint (full model) and the final weights.
  double param_diff = max_param_diff(root + "/one/final", root + "/two/final");
  if (!lora) param_diff = std::max(param_diff, max_param_diff(root + "/one/checkpoint/model", root + "/two/checkpoint/model"));
  const double moved = max_param_diff(model_dir, root + "/one/final");
  std::printf("SFT %s, 2 gloo ranks%s vs 1 process, 5 steps: max |loss diff| %.3e, |grad_norm diff| %.3e, "
              "|param diff| %.3e (parameters moved by up to %.3e)\n",
              lora ? "LoRA" : "full model", packing ? " packed" : "", loss_diff, gnorm_diff, param_diff, moved);
  EXPECT_LE(loss_diff, 1e-5);
  EXPECT_LE(gnorm_diff, 1e-5);
  EXPECT_LE(param_diff, 1e-5);
  EXPECT_GT(moved, 1e-3);  // the runs trained (a test that cannot pass by doing nothing)
  EXPECT_FALSE(path_exists(root + "/two/tensorboard"));
}

TEST(SftDataParallel, TwoGlooRanksEqualOneProcess) { two_ranks_equal_one_process(false); }

TEST(SftDataParallel, TwoGlooRanksEqualOneProcessLora) { two_ranks_equal_one_process(true); }

TEST(SftDataParallel, TwoPackedGlooRanksEqualOneUnpackedProcess) { two_ranks_equal_one_process(false, true); }

TEST(SftDataParallel, BatchThatDoesNotSplitOverTheRanksIsRefused) {
  const std::string model_dir = small_model("dp_split_model");
  LaunchOptions lo;
  lo.nproc = 2;
  lo.env = {{"R1_SFT_DP_MODEL", model_dir}, {"R1_SFT_DP_RUN", fresh_dir("dp_split") + "/two"},
            {"R1_SFT_DP_LORA", "0"}, {"R1_SFT_DP_BATCH", "7"}, {"R1_DIST_TIMEOUT_S", "120"}};
  lo.grace_s = 5;
  lo.timeout_s = 300;
  const std::vector<int> st =
      launch_ranks({self_exe(), "--gtest_filter=SftDataParallelWorker.Run"}, lo).wait_status;
  for (int s : st) EXPECT_TRUE(WIFEXITED(s) && WEXITSTATUS(s) == 0) << "rank status " << s;  // saw the error
}

}  // namespace
}  // namespace r1kit::sft
