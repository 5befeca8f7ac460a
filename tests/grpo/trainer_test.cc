// The GRPO trainer end to end on a tiny random model (vocab 16) with a trivial reward:
// (1) it learns (mean reward rises), (2) a run killed with SIGKILL after step k, or stopped after
// step k, resumes from its last checkpoint and its metrics.jsonl has every step exactly once and
// matches an uninterrupted run.
#include "grpo/trainer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <map>
#include <filesystem>

#include "core/config.h"
#include "core/fs.h"
#include "grpo/trainer_state.h"
#include "model/checkpoint.h"
#include "model/lora.h"
#include "model/master_weights.h"
#include "tests/grpo/tiny_grpo.h"
#include "tests/test_util.h"

namespace r1kit::grpo {
namespace {

namespace fs = std::filesystem;
using namespace tiny;  // NOLINT: the shared tiny set-up (tests/grpo/tiny_grpo.h)

TEST(GrpoTrainer, MeanRewardRises) {
  const std::string root = fresh_dir("learns");
  const std::string model_dir = make_tiny_model(root);
  GrpoOptions o = tiny_options();
  o.steps = 16;
  GrpoResult r = run_grpo(o, root + "/run", tiny_inputs(model_dir));
  ASSERT_TRUE(r.finished);
  std::vector<json> m = read_metrics(root + "/run");
  ASSERT_EQ(m.size(), 16u);
  auto mean_of = [&](size_t from, size_t to) {
    double s = 0;
    for (size_t i = from; i < to; ++i) s += m[i]["reward/mean"].get<double>();
    return s / (to - from);
  };
  const double first = mean_of(0, 4), last = mean_of(12, 16);
  std::printf("mean reward: first 4 steps %.3f, last 4 steps %.3f\n", first, last);
  EXPECT_GT(last, first + 0.25);
  for (const char* key : {"reward/std", "reward/accuracy", "completion_length/mean", "completion_length/max",
                          "clip_ratio/region", "kl", "entropy", "grad_norm", "lr", "tokens_per_s", "time/generate",
                          "time/reward", "time/train"}) {
    EXPECT_TRUE(m.back().contains(key)) << key;
  }
  EXPECT_TRUE(path_exists(root + "/run/model/config.json"));
  EXPECT_TRUE(path_exists(root + "/run/samples.jsonl"));
  // A saved policy loads back and differs from the initial one.
  Transformer init = load_model(model_dir, nullptr, torch::kCPU, torch::kFloat32);
  Transformer trained = load_model(r.model_dir, nullptr, torch::kCPU, torch::kFloat32);
  EXPECT_FALSE(torch::equal(init->parameters()[0], trained->parameters()[0]));
}

// Steps 1..n of `m` are present exactly once, in order.
void expect_every_step_once(const std::vector<json>& m, int64_t n) {
  ASSERT_EQ(static_cast<int64_t>(m.size()), n);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(m[i]["step"].get<int64_t>(), i + 1);
}

GrpoOptions resume_options() {
  GrpoOptions o = tiny_options();
  o.steps = 6;
  o.save_every = 2;
  o.keep_checkpoints = 2;
  o.num_iterations = 2;  // exercises old log-probs and ratio clipping
  o.beta = 0.04;         // and the reference model
  return o;
}

// The interrupted-and-resumed run in `run_dir` must equal an uninterrupted run of the same
// options: every step once, same data positions, same rewards and losses.
void expect_same_as_uninterrupted(const std::string& root, const std::string& model_dir, const std::string& run_dir) {
  GrpoResult full = run_grpo(resume_options(), root + "/full", tiny_inputs(model_dir));
  ASSERT_TRUE(full.finished);
  std::vector<json> want = read_metrics(root + "/full");
  std::vector<json> got = read_metrics(run_dir);
  expect_every_step_once(got, 6);
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    EXPECT_EQ(got[i]["data_position"], want[i]["data_position"]) << "step " << i + 1;
    EXPECT_NEAR(got[i]["reward/mean"].get<double>(), want[i]["reward/mean"].get<double>(), 1e-9) << "step " << i + 1;
    EXPECT_NEAR(got[i]["loss"].get<double>(), want[i]["loss"].get<double>(), 1e-5) << "step " << i + 1;
  }
  EXPECT_EQ(checkpoint_steps(run_dir), (std::vector<int64_t>{4, 6}));  // keep_checkpoints = 2
}

TEST(GrpoResume, InjectedStopThenResume) {
  const std::string root = fresh_dir("stop");
  const std::string model_dir = make_tiny_model(root);
  const std::string run = root + "/run";
  GrpoInputs in = tiny_inputs(model_dir);
  in.stop_after_steps = 3;  // steps 1..3 run; the newest checkpoint is step 2
  GrpoResult a = run_grpo(resume_options(), run, in);
  EXPECT_FALSE(a.finished);
  EXPECT_EQ(a.step, 3);
  EXPECT_EQ(read_metrics(run).size(), 3u);
  GrpoResult b = run_grpo(resume_options(), run, tiny_inputs(model_dir));
  EXPECT_TRUE(b.finished);
  EXPECT_EQ(b.resumed_from, 2);
  expect_same_as_uninterrupted(root, model_dir, run);  // step 3's old line was replaced, not repeated
}

TEST(GrpoResume, KilledWithSigkillThenResume) {
  const std::string root = fresh_dir("kill");
  const std::string model_dir = make_tiny_model(root);
  const std::string run = root + "/run";
  // "threadsafe" re-executes this test in a fresh process up to here (the setup above is
  // deterministic), instead of forking a process that already runs torch threads.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        GrpoInputs in = tiny_inputs(model_dir);
        in.on_step = [](const json& rec) {
          if (rec["step"].get<int64_t>() == 5) std::raise(SIGKILL);  // kill -9 after step 5 is logged
        };
        run_grpo(resume_options(), run, in);
      },
      ::testing::KilledBySignal(SIGKILL), "");
  EXPECT_EQ(latest_checkpoint_step(run), 4);
  EXPECT_EQ(read_metrics(run).size(), 5u);  // the killed process logged step 5, never checkpointed it
  GrpoResult b = run_grpo(resume_options(), run, tiny_inputs(model_dir));
  EXPECT_TRUE(b.finished);
  EXPECT_EQ(b.resumed_from, 4);
  expect_same_as_uninterrupted(root, model_dir, run);
}

// A bf16 policy at lr 1e-6 (the Qwen recipe's setting) learns through fp32 master weights, and a
// stopped run resumes onto the masters of the uninterrupted one (they are in optimizer.pt).
TEST(GrpoResume, Bf16PolicyTrainsAtLr1e6AndResumesOntoTheSameMasters) {
  const std::string root = fresh_dir("bf16");
  const std::string model_dir = make_tiny_model(root);
  GrpoOptions o = tiny_options();
  o.steps = 4;
  o.save_every = 2;
  o.lr = 1e-6;
  GrpoInputs in = tiny_inputs(model_dir);
  in.dtype = torch::kBFloat16;
  ASSERT_TRUE(run_grpo(o, root + "/full", in).finished);
  GrpoInputs stop = in;
  stop.stop_after_steps = 3;  // newest checkpoint: step 2
  EXPECT_FALSE(run_grpo(o, root + "/run", stop).finished);
  EXPECT_EQ(run_grpo(o, root + "/run", in).resumed_from, 2);

  auto masters_of = [](const std::string& run) {
    const std::string ckpt = checkpoint_dir(run, 4);
    Transformer m = load_model(ckpt + "/model", nullptr, torch::kCPU, torch::kBFloat16);
    MasterWeights mw(m->parameters(), torch::optim::AdamWOptions(1e-6));
    mw.load_from_file(ckpt + "/optimizer.pt", torch::kCPU);
    return mw.masters();
  };
  const auto full = masters_of(root + "/full"), resumed = masters_of(root + "/run");
  Transformer init = load_model(model_dir, nullptr, torch::kCPU, torch::kFloat32);
  Transformer final_policy = load_model(root + "/full/model", nullptr, torch::kCPU, torch::kBFloat16);
  const auto p0 = init->parameters(), p1 = final_policy->parameters();
  double drift = 0, resume_diff = 0;
  int64_t changed = 0;
  for (size_t i = 0; i < full.size(); ++i) {
    const auto start = p0[i].to(torch::kBFloat16).to(torch::kFloat32);
    drift = std::max(drift, (full[i] - start).abs().max().item<double>());
    resume_diff = std::max(resume_diff, (full[i] - resumed[i]).abs().max().item<double>());
    changed += (p1[i].to(torch::kFloat32).ne(start) & (start.abs() > 1.0 / 2048)).sum().item<int64_t>();
  }
  std::printf("  bf16 GRPO, 4 steps at lr 1e-6: max master drift %.2e, bf16 weights above 2^-11 changed %lld, "
              "resumed vs uninterrupted masters max diff %.2e\n", drift, (long long)changed, resume_diff);
  EXPECT_GT(drift, 1e-6);
  EXPECT_LT(drift, 1e-5);  // ~lr per AdamW step
  EXPECT_GT(changed, 0);
  EXPECT_LT(resume_diff, 1e-9);
}

// Reward 1 for every completion of prompts "bcd" and "ef" (their groups always agree), else the
// share of 'a': DAPO dynamic sampling must drop exactly the agreeing groups and refill the batch.
class ConstantForSomePrompts : public rewards::Reward {
 public:
  rewards::RewardOutput score_one(const rewards::RewardInput& in) const override {
    if (in.prompt == "bcd" || in.prompt == "ef") {
      rewards::RewardOutput out;
      out.score = 1.0;
      return out;
    }
    return LetterAReward().score_one(in);
  }
};

TEST(GrpoTrainer, DynamicSamplingDropsAgreeingGroupsAndRefills) {
  const std::string root = fresh_dir("dynamic");
  const std::string model_dir = make_tiny_model(root);
  GrpoOptions o = tiny_options_with(std::make_shared<ConstantForSomePrompts>(), "constant_for_some");
  o.steps = 3;
  o.dynamic_sampling = true;
  o.max_sampling_rounds = 8;
  run_grpo(o, root + "/run", tiny_inputs(model_dir));
  std::vector<json> m = read_metrics(root + "/run");
  ASSERT_EQ(m.size(), 3u);
  int64_t position = 0, dropped = 0;
  for (const json& rec : m) {
    EXPECT_EQ(rec["groups/trained"].get<int64_t>(), 4);  // the batch was refilled to B
    const int64_t step_dropped = rec["groups/dropped"].get<int64_t>();
    // Every record drawn this step was either trained on or dropped.
    EXPECT_EQ(rec["data_position"].get<int64_t>() - position, 4 + step_dropped);
    EXPECT_EQ(rec["sampling_rounds"].get<int64_t>() > 1, step_dropped > 0);
    position = rec["data_position"].get<int64_t>();
    dropped += step_dropped;
  }
  // 12 trained groups from a stream where 2 of every 6 records always agree: at least 4 dropped.
  EXPECT_GE(dropped, 4);
}

TEST(GrpoTrainer, MaskTruncatedRemovesCutCompletionsFromTheLoss) {
  // The tiny model has no EOS, so every completion is cut by max_completion_length: with
  // mask_truncated nothing enters the loss, the gradient is zero and the weights do not move.
  const std::string root = fresh_dir("mask_truncated");
  const std::string model_dir = make_tiny_model(root);
  GrpoOptions o = tiny_options();
  o.steps = 1;
  o.mask_truncated = true;
  GrpoResult r = run_grpo(o, root + "/run", tiny_inputs(model_dir));
  EXPECT_EQ(r.last_metrics["truncated_frac"].get<double>(), 1.0);
  EXPECT_EQ(r.last_metrics["grad_norm"].get<double>(), 0.0);
  EXPECT_EQ(r.last_metrics["loss"].get<double>(), 0.0);
  Transformer init = load_model(model_dir, nullptr, torch::kCPU, torch::kFloat32);
  Transformer trained = load_model(r.model_dir, nullptr, torch::kCPU, torch::kFloat32);
  for (size_t i = 0; i < init->parameters().size(); ++i)
    EXPECT_TRUE(torch::equal(init->parameters()[i], trained->parameters()[i])) << i;
}

TEST(GrpoTrainer, ScheduleWarmupAndCosine) {
  GrpoOptions o;
  o.lr = 1.0;
  o.warmup_steps = 4;
  o.lr_schedule = "cosine";
  o.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(scheduled_lr(o, 0, 14), 0.0);   // HF: step / warmup
  EXPECT_DOUBLE_EQ(scheduled_lr(o, 2, 14), 0.5);
  EXPECT_DOUBLE_EQ(scheduled_lr(o, 4, 14), 1.0);   // cosine starts at the peak
  EXPECT_NEAR(scheduled_lr(o, 9, 14), 0.1 + 0.9 * 0.5, 1e-12);  // half way: cos(pi/2) = 0
  EXPECT_NEAR(scheduled_lr(o, 14, 14), 0.1, 1e-12);
}

TEST(GrpoTrainer, TruncateJsonlDropsLaterStepsAndTornLines) {
  const std::string dir = fresh_dir("truncate");
  write_file_atomic(dir + "/m.jsonl", "{\"step\":1}\n{\"step\":2}\n{\"step\":3}\n{\"step\":4,\"x\":");
  truncate_jsonl_after_step(dir + "/m.jsonl", 2);
  EXPECT_EQ(read_file(dir + "/m.jsonl"), "{\"step\":1}\n{\"step\":2}\n");
}

// Fails (throws) on completions containing 'b' or 'c': some samples of most groups, all of a few.
class ThrowsOnBC : public rewards::Reward {
 public:
  rewards::RewardOutput score_one(const rewards::RewardInput& in) const override {
    if (in.completion.find_first_of("bc") != std::string::npos) throw Error("cannot score '" + in.completion + "'");
    return LetterAReward().score_one(in);
  }
};

// Reward integrity: errored samples are masked out of the loss (not scored 0), advantages use each
// group's valid samples only, groups with too few valid samples are dropped, and metrics count it.
TEST(GrpoTrainer, ErroredRewardsAreMaskedNotScoredZero) {
  const std::string root = fresh_dir("masked");
  const std::string model_dir = make_tiny_model(root);
  // error_score -100 would dominate every advantage if it were used as a score.
  GrpoOptions o = tiny_options_with(std::make_shared<ThrowsOnBC>(), "throws_on_bc", /*error_score=*/-100.0);
  o.steps = 3;
  o.max_completion_length = 3;
  o.min_valid_samples = 6;
  o.log_samples_every = 1;
  o.samples_per_log = 1000;  // every sample of the kept groups
  GrpoResult r = run_grpo(o, root + "/run", tiny_inputs(model_dir));
  ASSERT_TRUE(r.finished);
  int64_t masked = 0, errors = 0, dropped = 0;
  for (const json& rec : read_metrics(root + "/run")) {
    masked += rec["samples/masked"].get<int64_t>();
    errors += rec["reward/errors"].get<int64_t>();
    dropped += rec["groups/dropped_reward_errors"].get<int64_t>();
    EXPECT_EQ(rec["groups/trained"].get<int64_t>() + rec["groups/dropped_reward_errors"].get<int64_t>(), 4);
    EXPECT_GT(rec["reward/mean"].get<double>(), -1.0);  // the error score (-100) is not a reward
  }
  std::printf("masked %lld samples (%lld reward errors), dropped %lld groups\n", static_cast<long long>(masked),
              static_cast<long long>(errors), static_cast<long long>(dropped));
  EXPECT_GT(masked, 0);
  EXPECT_GT(dropped, 0);
  EXPECT_EQ(masked, errors);
  // In samples.jsonl: masked samples have no advantage; the others' advantages are their group's
  // valid rewards normalised by the valid rewards' mean and std.
  std::map<std::pair<int64_t, std::string>, std::vector<json>> groups;
  for_each_jsonl(root + "/run/samples.jsonl", [&](const json& line, int) {
    groups[{line["step"].get<int64_t>(), line["prompt"].get<std::string>()}].push_back(line);
  });
  int64_t checked = 0, masked_logged = 0;
  double max_diff = 0;
  for (const auto& [key, lines] : groups) {
    if (lines.size() != 8) continue;  // two groups of the same prompt in one step: skip
    std::vector<double> valid;
    for (const json& l : lines)
      if (!l.contains("reward_errors")) valid.push_back(l["reward"].get<double>());
    EXPECT_GE(valid.size(), 6u);  // min_valid_samples
    double m = 0, v = 0;
    for (double x : valid) m += x;
    m /= valid.size();
    for (double x : valid) v += (x - m) * (x - m);
    const double sd = std::sqrt(v / (valid.size() - 1));
    for (const json& l : lines) {
      if (l.contains("reward_errors")) {
        EXPECT_TRUE(l["advantage"].is_null());
        ++masked_logged;
      } else {
        max_diff = std::max(max_diff, std::abs(l["advantage"].get<double>() - (l["reward"].get<double>() - m) /
                                                                                   (sd + o.advantage_eps)));
        ++checked;
      }
    }
  }
  std::printf("advantages of %lld valid samples checked (max diff %.3g), %lld masked samples logged\n",
              static_cast<long long>(checked), max_diff, static_cast<long long>(masked_logged));
  EXPECT_GT(checked, 0);
  EXPECT_GT(masked_logged, 0);
  EXPECT_LT(max_diff, 1e-6);
}

// A reward plugin that hangs is killed after its timeout_s, its samples are masked, the plugin is
// restarted, and the run finishes.
TEST(GrpoTrainer, HangingRewardPluginIsKilledAndTheRunGoesOn) {
  const std::string root = fresh_dir("hang");
  const std::string model_dir = make_tiny_model(root);
  GrpoOptions o = tiny_options();
  const std::string state = root + "/plugin_state";
  make_dirs(state);
  const std::string yaml = root + "/rewards.yaml";
  write_file_atomic(yaml, "rewards:\n  - name: plugin\n    label: accuracy\n    options:\n      command: [python3, " +
                              std::string(R1_TEST_DATA_DIR) + "/rewards/plugins/faulty_plugin.py, hang, " + state +
                              "]\n      timeout_s: 2\n");
  ConfigNode node = ConfigNode::load(yaml);
  o.rewards = rewards::RewardSet::from_config(node);
  node.finish();
  o.steps = 3;
  const auto t0 = std::chrono::steady_clock::now();
  GrpoResult r = run_grpo(o, root + "/run", tiny_inputs(model_dir));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(r.finished);
  int64_t masked = 0;
  for (const json& rec : read_metrics(root + "/run")) masked += rec["samples/masked"].get<int64_t>();
  std::printf("run of 3 steps with a plugin hanging on its 2nd request (timeout_s 2): %.1f s, %lld samples masked\n",
              seconds, static_cast<long long>(masked));
  EXPECT_EQ(masked, 8);  // the hung request's group (8 samples), and nothing else
  EXPECT_LT(seconds, 60.0);
  EXPECT_EQ(read_file(state + "/starts"), "2");  // killed and restarted once
}

// LoRA GRPO: only the adapter trains (the base weights stay), with the rollout replicas holding
// either the merged weights or the adapter itself; both learn, the adapter is saved in PEFT format
// and the final model is the merged policy; with beta > 0 the reference is the policy without its
// adapter (KL exactly 0 at the first step, when B = 0).
// The tiny model with 5x larger (tied) embeddings: LoRA leaves the embeddings and the final norm
// frozen, and with N(0, 0.02) embeddings no adapter could move the logits by more than ~0.6.
std::string make_tiny_lora_base(const std::string& root) {
  const std::string dir = make_tiny_model(root);
  ModelConfig cfg;
  Transformer m = load_model(dir, &cfg, torch::kCPU, torch::kFloat32);
  {
    torch::NoGradGuard ng;
    m->embed_tokens->weight.mul_(5.0);
  }
  SaveOptions save;
  save.tokenizer_dir = root + "/tok";
  save_model(m, cfg, root + "/lora_base", save);
  return root + "/lora_base";
}

TEST(GrpoTrainer, LoraTrainsTheAdapterOnlyWithMergedOrAppliedRollout) {
  for (const char* rollout : {"merged", "applied"}) {
    const std::string root = fresh_dir(std::string("lora_") + rollout);
    const std::string model_dir = make_tiny_lora_base(root);
    GrpoOptions o = tiny_options();
    o.steps = 16;
    o.lr = 3e-2;
    o.beta = 0.01;
    o.lora.r = 8;
    o.lora.alpha = 16;
    o.lora.target_modules = {"all-linear"};
    o.lora.rollout = rollout;
    GrpoResult r = run_grpo(o, root + "/run", tiny_inputs(model_dir));
    ASSERT_TRUE(r.finished);
    std::vector<json> m = read_metrics(root + "/run");
    ASSERT_EQ(m.size(), 16u);
    EXPECT_EQ(m[0]["kl"].get<double>(), 0.0);  // step 1: the adapter is still zero
    double first = 0, last = 0;
    for (int i = 0; i < 4; ++i) first += m[i]["reward/mean"].get<double>() / 4, last += m[12 + i]["reward/mean"].get<double>() / 4;
    std::printf("LoRA (%s rollout): mean reward first 4 steps %.3f, last 4 steps %.3f, kl at the end %.4f\n", rollout,
                first, last, m.back()["kl"].get<double>());
    EXPECT_GT(last, first + 0.2);
    EXPECT_GT(m.back()["kl"].get<double>(), 0.0);
    // The adapter applied to the untouched base model gives the saved (merged) final policy.
    ASSERT_TRUE(path_exists(root + "/run/adapter/adapter_config.json"));
    EXPECT_FALSE(path_exists(root + "/run/checkpoints/step-16/model"));  // checkpoints hold the adapter only
    EXPECT_TRUE(path_exists(root + "/run/checkpoints/step-16/adapter/adapter_model.safetensors"));
    Transformer base = load_model(model_dir, nullptr, torch::kCPU, torch::kFloat32);
    Transformer final_model = load_model(r.model_dir, nullptr, torch::kCPU, torch::kFloat32);
    base->eval();
    final_model->eval();
    load_peft_adapter(base, root + "/run/adapter");
    torch::NoGradGuard ng;
    const torch::Tensor ids = torch::tensor(std::vector<int64_t>{1, 2, 3, 4, 0, 0, 5}).view({1, -1});
    const torch::Tensor pos = torch::arange(7, torch::kInt64).view({1, -1});
    const double d = (base->forward(ids, pos) - final_model->forward(ids, pos)).abs().max().item<double>();
    EXPECT_LT(d, 1e-4);
  }
}

TEST(GrpoResume, LoraStopThenResumeEqualsUninterrupted) {
  const std::string root = fresh_dir("lora_resume");
  const std::string model_dir = make_tiny_model(root);
  GrpoOptions o = resume_options();
  o.lora.r = 4;
  o.lora.target_modules = {"q_proj", "v_proj"};
  GrpoInputs in = tiny_inputs(model_dir);
  in.stop_after_steps = 3;
  GrpoResult a = run_grpo(o, root + "/run", in);
  EXPECT_FALSE(a.finished);
  GrpoResult b = run_grpo(o, root + "/run", tiny_inputs(model_dir));
  EXPECT_TRUE(b.finished);
  EXPECT_EQ(b.resumed_from, 2);
  GrpoResult full = run_grpo(o, root + "/full", tiny_inputs(model_dir));
  std::vector<json> want = read_metrics(root + "/full"), got = read_metrics(root + "/run");
  expect_every_step_once(got, 6);
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    EXPECT_NEAR(got[i]["reward/mean"].get<double>(), want[i]["reward/mean"].get<double>(), 1e-9) << "step " << i + 1;
    EXPECT_NEAR(got[i]["loss"].get<double>(), want[i]["loss"].get<double>(), 1e-5) << "step " << i + 1;
  }
}

}  // namespace
}  // namespace r1kit::grpo
