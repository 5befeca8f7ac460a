// Data-parallel GRPO on c10d/Gloo over loopback. The test binary re-executes itself as the ranks
// (DataParallelWorker.Run with RANK/WORLD_SIZE/MASTER_* set, as torchrun would), so no process that
// already runs torch threads is forked.
//   - launcher environments (torchrun, Slurm) and their errors
//   - collectives: bucketed all-reduce of mixed dtypes, all-gather of unequal sizes, broadcast
//   - 2 ranks give the loss, metrics and parameter trajectory (a checkpoint every step) of 1 process
//     with the same global batch, within 1e-5
//   - dynamic sampling and a batch that does not split over the ranks are refused on every rank
//   - rank 1 killed with SIGKILL after step 3: the relaunched ranks resume from the step-2 checkpoint
//     and end where the uninterrupted run ends
#include "grpo/data_parallel.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <map>

#include "core/check.h"
#include "core/fs.h"
#include "core/launcher.h"
#include "grpo/trainer.h"
#include "grpo/trainer_state.h"
#include "tests/grpo/tiny_grpo.h"

namespace r1kit::grpo {
namespace {

using namespace tiny;  // NOLINT: the shared tiny set-up (tests/grpo/tiny_grpo.h)

TEST(DistEnv, TorchrunSlurmAndErrors) {
  auto env_of = [](std::map<std::string, std::string> vars) {
    return [vars](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  };
  DistEnv none = read_dist_env(env_of({}));
  EXPECT_EQ(none.world_size, 1);
  EXPECT_EQ(none.source, "none");
  DistEnv t = read_dist_env(env_of({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"LOCAL_RANK", "1"},
                                    {"MASTER_ADDR", "10.0.0.7"}, {"MASTER_PORT", "29611"},
                                    {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "8"}}));  // torchrun's win
  EXPECT_EQ(t.source, "torchrun");
  EXPECT_EQ(t.rank, 3);
  EXPECT_EQ(t.world_size, 4);
  EXPECT_EQ(t.local_rank, 1);
  EXPECT_EQ(t.master_addr, "10.0.0.7");
  EXPECT_EQ(t.master_port, 29611);
  DistEnv s = read_dist_env(env_of({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"},
                                    {"SLURM_LAUNCH_NODE_IPADDR", "192.168.1.2"}}));
  EXPECT_EQ(s.source, "slurm");
  EXPECT_EQ(s.rank, 5);
  EXPECT_EQ(s.world_size, 8);
  EXPECT_EQ(s.local_rank, 1);
  EXPECT_EQ(s.master_addr, "192.168.1.2");
  EXPECT_EQ(s.master_port, 29500);
  auto error_of = [&](std::map<std::string, std::string> vars) {
    try {
      read_dist_env(env_of(vars));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK='x'"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("must be < world size"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}}).find("WORLD_SIZE"), std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}).find("MASTER_PORT"),
            std::string::npos);
}

std::string self_exe() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  R1_CHECK(n > 0, "readlink /proc/self/exe failed");
  return std::string(buf, static_cast<size_t>(n));
}

// Starts `world` ranks of DataParallelWorker.Run with `role` through the launcher `r1kit launch`
// uses (core/launcher.h); returns each rank's wait status.
std::vector<int> run_ranks(int world, const std::string& role, std::map<std::string, std::string> env) {
  LaunchOptions lo;
  lo.nproc = world;
  lo.env = std::move(env);
  lo.env["R1_DP_ROLE"] = role;
  lo.env["R1_DIST_TIMEOUT_S"] = "120";
  lo.env["OMP_NUM_THREADS"] = "1";
  lo.grace_s = 5;
  lo.timeout_s = 600;
  return launch_ranks({self_exe(), "--gtest_filter=DataParallelWorker.Run"}, lo).wait_status;
}

bool exited_ok(int st) { return WIFEXITED(st) && WEXITSTATUS(st) == 0; }

GrpoOptions dp_options() {
  GrpoOptions o = tiny_options();  // B = 4 prompts x G = 8
  // One group per micro-batch: the trainer packs a step's groups sorted by length, so with larger
  // micro-batches one process and two ranks would run different groups side by side (different
  // padding and summation order), not a different computation.
  o.micro_batch_size = 8;
  // lr 1e-3: the packed float32 path sums in a different order on 2 ranks than in 1 process, and
  // AdamW turns ~1e-7 gradient differences of near-zero gradients into lr-sized parameter steps
  // (1.2e-5 at lr 1e-2). Without the all-reduce the two runs differ by ~lr, so the test still fails.
  o.lr = 1e-3;
  o.steps = 5;
  o.save_every = 1;  // a checkpoint per step: the parameter trajectory
  o.keep_checkpoints = 5;
  o.num_iterations = 2;  // old log-probs, ratios and clipping
  o.beta = 0.04;         // and the reference model
  return o;
}

// The body of every rank (skipped when run directly).
TEST(DataParallelWorker, Run) {
  const char* role = std::getenv("R1_DP_ROLE");
  if (!role) GTEST_SKIP() << "a rank of the data-parallel tests (started by them)";
  const std::string r = role;
  if (r == "collectives") {
    DataParallel dp = DataParallel::from_env(torch::kCPU);
    ASSERT_TRUE(dp.active());
    const int rank = dp.rank();
    // Mixed dtypes and sizes, buckets of 64 bytes: several buckets in flight.
    std::vector<torch::Tensor> ts = {torch::full({3, 5}, 1.0 + rank, torch::kFloat32),
                                     torch::arange(7, torch::kFloat64) * (rank + 1),
                                     torch::full({40}, 0.5f * rank, torch::kFloat32), torch::ones({2}, torch::kBFloat16)};
    dp.group()->all_reduce_sum(ts, 64);
    EXPECT_TRUE(torch::equal(ts[0], torch::full({3, 5}, 3.0, torch::kFloat32)));
    EXPECT_TRUE(torch::equal(ts[1], torch::arange(7, torch::kFloat64) * 3));
    EXPECT_TRUE(torch::equal(ts[2], torch::full({40}, 0.5f, torch::kFloat32)));
    EXPECT_TRUE(torch::equal(ts[3], torch::full({2}, 2.0, torch::kBFloat16)));
    std::vector<double> mine(static_cast<size_t>(rank + 1), 10.0 * rank);  // unequal sizes
    EXPECT_EQ(dp.gather(mine), (std::vector<double>{0.0, 10.0, 10.0}));
    torch::Tensor b = torch::full({4}, static_cast<double>(rank + 7));
    dp.group()->broadcast({b}, 1);
    EXPECT_TRUE(torch::equal(b, torch::full({4}, 8.0)));
    dp.barrier();
    return;
  }
  if (r == "refused") {  // combinations data parallel does not support yet: a clear error on every rank
    GrpoInputs in = tiny_inputs(std::getenv("R1_DP_MODEL"));
    auto error_of = [&](const GrpoOptions& o) {
      try {
        run_grpo(o, std::getenv("R1_DP_RUN"), in);
      } catch (const Error& e) {
        return std::string(e.what());
      }
      return std::string("accepted");
    };
    GrpoOptions dyn = dp_options();
    dyn.dynamic_sampling = true;
    const std::string e1 = error_of(dyn);
    GrpoOptions odd = dp_options();
    odd.prompts_per_step = 3;
    const std::string e2 = error_of(odd);
    std::printf("refused: %s\nrefused: %s\n", e1.c_str(), e2.c_str());
    EXPECT_NE(e1.find("dynamic_sampling is not supported with 2 data-parallel ranks"), std::string::npos) << e1;
    EXPECT_NE(e2.find("prompts_per_step 3 must be a multiple of the world size 2"), std::string::npos) << e2;
    return;
  }
  ASSERT_EQ(r, "train");
  GrpoInputs in = tiny_inputs(std::getenv("R1_DP_MODEL"));
  const char* kill_step = std::getenv("R1_DP_KILL_STEP");
  if (kill_step && std::string(std::getenv("RANK")) == "1") {
    const int64_t k = std::atoll(kill_step);
    in.on_step = [k](const json& rec) {
      if (rec["step"].get<int64_t>() == k) std::raise(SIGKILL);
    };
  }
  GrpoResult res = run_grpo(dp_options(), std::getenv("R1_DP_RUN"), in);
  EXPECT_TRUE(res.finished);
}

TEST(DataParallel, GlooCollectivesOnLoopback) {
  std::vector<int> st = run_ranks(2, "collectives", {});
  for (int s : st) EXPECT_TRUE(exited_ok(s)) << "rank status " << s;
}

TEST(DataParallel, UnsupportedCombinationsAreRefusedOnEveryRank) {
  const std::string root = fresh_dir("data_parallel_refused");
  const std::string model_dir = make_tiny_model(root);
  std::vector<int> st = run_ranks(2, "refused", {{"R1_DP_MODEL", model_dir}, {"R1_DP_RUN", root + "/run"}});
  for (int s : st) EXPECT_TRUE(exited_ok(s)) << "rank status " << s;
}

void expect_same_trajectory(const std::string& want_run, const std::string& got_run, const char* what) {
  std::vector<json> want = read_metrics(want_run), got = read_metrics(got_run);
  ASSERT_EQ(got.size(), 5u) << what;
  ASSERT_EQ(want.size(), 5u);
  double loss_diff = 0, gnorm_diff = 0, param_diff = 0, reward_diff = 0;
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(got[i]["step"], want[i]["step"]);
    EXPECT_EQ(got[i]["data_position"], want[i]["data_position"]);
    EXPECT_EQ(got[i]["groups/trained"], want[i]["groups/trained"]);
    loss_diff = std::max(loss_diff, std::fabs(got[i]["loss"].get<double>() - want[i]["loss"].get<double>()));
    gnorm_diff =
        std::max(gnorm_diff, std::fabs(got[i]["grad_norm"].get<double>() - want[i]["grad_norm"].get<double>()));
    reward_diff = std::max(reward_diff,
                           std::fabs(got[i]["reward/mean"].get<double>() - want[i]["reward/mean"].get<double>()));
    param_diff = std::max(param_diff, max_param_diff(checkpoint_dir(want_run, int64_t(i) + 1) + "/model",
                                                     checkpoint_dir(got_run, int64_t(i) + 1) + "/model"));
  }
  param_diff = std::max(param_diff, max_param_diff(want_run + "/model", got_run + "/model"));
  std::printf("%s vs 1 process, 5 steps: max |loss diff| %.3e, |grad_norm diff| %.3e, |reward diff| %.3e, "
              "|param diff| %.3e (every step's checkpoint and the final model)\n",
              what, loss_diff, gnorm_diff, reward_diff, param_diff);
  EXPECT_LE(loss_diff, 1e-5);
  EXPECT_LE(gnorm_diff, 1e-5);
  EXPECT_LE(reward_diff, 1e-12);  // the same samples: per-record seeds do not depend on the rank
  EXPECT_LE(param_diff, 1e-5);
}

TEST(DataParallel, TwoGlooRanksEqualOneProcessAndResumeAfterARankIsKilled) {
  const std::string root = fresh_dir("data_parallel");
  const std::string model_dir = make_tiny_model(root);
  GrpoResult one = run_grpo(dp_options(), root + "/one", tiny_inputs(model_dir));
  ASSERT_TRUE(one.finished);

  std::vector<int> st = run_ranks(2, "train", {{"R1_DP_MODEL", model_dir}, {"R1_DP_RUN", root + "/two"}});
  for (int s : st) ASSERT_TRUE(exited_ok(s)) << "rank status " << s;
  expect_same_trajectory(root + "/one", root + "/two", "2 gloo ranks");
  // Only rank 0 wrote: one metrics line per step.
  EXPECT_EQ(read_metrics(root + "/two").size(), 5u);

  // Rank 1 is killed after step 3 (its checkpoint is written: save_every 1, so kill after the log
  // line of step 3 but drop that checkpoint to make the resume point step 2 as in a real crash).
  st = run_ranks(2, "train",
                 {{"R1_DP_MODEL", model_dir}, {"R1_DP_RUN", root + "/killed"}, {"R1_DP_KILL_STEP", "3"}});
  EXPECT_TRUE(WIFSIGNALED(st[1]) && WTERMSIG(st[1]) == SIGKILL) << "rank 1 status " << st[1];
  EXPECT_FALSE(exited_ok(st[0]));  // rank 0 lost its peer (a c10d error) or was stopped by the launcher
  const int64_t resume_at = latest_checkpoint_step(root + "/killed");
  EXPECT_GE(resume_at, 2);
  EXPECT_LE(resume_at, 3);
  std::printf("rank 1 killed after step 3; newest checkpoint: step %lld\n", static_cast<long long>(resume_at));
  st = run_ranks(2, "train", {{"R1_DP_MODEL", model_dir}, {"R1_DP_RUN", root + "/killed"}});
  for (int s : st) ASSERT_TRUE(exited_ok(s)) << "rank status " << s;
  expect_same_trajectory(root + "/one", root + "/killed", "2 gloo ranks, rank 1 killed and resumed");
}

}  // namespace
}  // namespace r1kit::grpo
