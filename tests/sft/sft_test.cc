// SFT: the loss mask on a hand-checked example, batch targets, the LR schedule, loss falling on
// the tiny task, and resume after an interruption (same metrics, same weights as one clean run).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <random>

#include "core/check.h"
#include "core/json.h"
#include "model/checkpoint.h"
#include "model/master_weights.h"
#include "model/tokenizer.h"
#include "model/tokenizer_prompt.h"
#include "recipes/tiny_model.h"
#include "recipes/tiny_task.h"
#include "sft/sft_trainer.h"
#include "tests/sft/tiny_sft.h"

namespace r1kit::sft {
namespace {

namespace fs = std::filesystem;

using namespace tiny;  // NOLINT: fresh_dir, small_model, tiny_source (tests/sft/tiny_sft.h)

TEST(SftDataset, LossMaskHandChecked) {
  const std::string dir = fresh_dir("mask");
  recipes::write_tiny_tokenizer(dir);
  const Tokenizer tok = Tokenizer::from_file(dir);
  auto id = [&](const std::string& t) { return int64_t{tok.token_to_id(t)}; };
  const int64_t eos = id("<eos>");
  const json rec = {{"prompt", "Q:1+2=<think>"}, {"completion", "1,3</think><answer>3</answer>"}};
  const SftExample ex = encode_sft_example(tok, rec, {}, eos, "rec");
  const std::vector<int64_t> want_ids = {id("Q"), id(":"), id("1"), id("+"), id("2"), id("="), id("<think>"),
                                         id("1"), id(","), id("3"), id("</think>"), id("<answer>"), id("3"),
                                         id("</answer>"), eos};
  const std::vector<uint8_t> want_mask = {0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1};
  EXPECT_EQ(ex.ids, want_ids);
  EXPECT_EQ(ex.loss_mask, want_mask);

  // A completion that already ends with EOS gets no second one.
  const json rec2 = {{"prompt", "Q:5=<think>"}, {"completion", "5</think><answer>5</answer><eos>"}};
  const SftExample ex2 = encode_sft_example(tok, rec2, {}, eos, "rec2");
  EXPECT_EQ(ex2.ids.size(), 5u + 6u);
  EXPECT_EQ(ex2.ids.back(), eos);
  EXPECT_EQ(std::count(ex2.ids.begin(), ex2.ids.end(), eos), 1);

  // Batch: right padding; target t is token t+1 where that token is learned.
  const SftBatch b = collate_sft({ex, ex2}, /*pad_id=*/eos);
  ASSERT_EQ(b.input_ids.sizes(), (std::vector<int64_t>{2, 15}));
  auto tgt = b.targets.accessor<int64_t, 2>();
  auto ids = b.input_ids.accessor<int64_t, 2>();
  for (int t = 0; t < 6; ++t) EXPECT_EQ(tgt[0][t], -100) << t;      // predicting prompt tokens: no loss
  for (int t = 6; t < 14; ++t) EXPECT_EQ(tgt[0][t], want_ids[t + 1]) << t;  // <think> -> "1" ... "</answer>" -> eos
  EXPECT_EQ(tgt[0][14], -100);                                      // nothing after the last token
  for (int t = 11; t < 15; ++t) {
    EXPECT_EQ(ids[1][t], eos);  // padding
    EXPECT_EQ(tgt[1][t], -100);
  }
  EXPECT_EQ(tgt[1][4], id("5"));  // "Q:5=<think>" then "5": the first completion token is a target
  EXPECT_EQ(tgt[1][3], -100);
  EXPECT_EQ(b.num_target_tokens, 8 + 6);

  // Bad records name where they came from.
  try {
    encode_sft_example(tok, json{{"prompt", "x"}}, {}, eos, "train.jsonl:7");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train.jsonl:7: missing field 'completion'"), std::string::npos) << e.what();
  }
  SftFormatOptions cut;
  cut.max_length = 7;  // only the prompt survives
  EXPECT_THROW(encode_sft_example(tok, rec, cut, eos, "rec"), Error);
}

// A distillation trace is a chat record (messages, from rejection sampling); the model is later
// evaluated and RL-trained on PromptEncoder ids followed by generated ids. SFT on the record must
// teach exactly that sequence: prompt ids unlearned, then the completion ids and EOS learned, for
// the chat path (the tokenizer's own template and "plain") and the prompt/completion path alike.
TEST(SftDataset, ChatRecordIdsEqualGenerationIds) {
  const std::string dir = fresh_dir("chat_ids");
  recipes::write_tiny_tokenizer(dir);
  const Tokenizer tok = Tokenizer::from_file(dir);
  const int64_t eos = tok.token_to_id("<eos>");
  const PromptEncoder generation(tok, dir);  // what eval and GRPO feed the model
  const recipes::TinyTask task;
  std::mt19937_64 rng(5);
  int checked = 0;
  for (int i = 0; i < 20; ++i) {
    const recipes::TinyProblem p = task.sample(rng);
    std::string completion = p.completion(0.0, rng);
    completion = completion.substr(0, completion.find("<eos>"));  // generated text has no special tokens
    std::vector<int64_t> want;
    for (int32_t id : generation.encode(p.prompt())) want.push_back(id);
    const size_t prompt_len = want.size();
    for (int32_t id : tok.encode(completion)) want.push_back(id);
    want.push_back(eos);
    std::vector<uint8_t> want_mask(want.size(), 1);
    std::fill(want_mask.begin(), want_mask.begin() + prompt_len, 0);

    const json chat = {{"messages", json::array({{{"role", "user"}, {"content", p.prompt()}},
                                                 {{"role", "assistant"}, {"content", completion}}})}};
    for (const std::string tmpl : {"", "plain"}) {
      SftFormatOptions o;
      o.chat_template = tmpl;
      o.tokenizer_dir = dir;
      const SftExample ex = encode_sft_example(tok, chat, o, eos, "chat", &generation);
      EXPECT_EQ(ex.ids, want) << p.prompt() << " template '" << tmpl << "'";
      EXPECT_EQ(ex.loss_mask, want_mask) << p.prompt() << " template '" << tmpl << "'";
    }
    const json pc = {{"prompt", p.prompt()}, {"completion", completion}};
    const SftExample ex = encode_sft_example(tok, pc, {}, eos, "pc", &generation);
    EXPECT_EQ(ex.ids, want) << p.prompt();
    EXPECT_EQ(ex.loss_mask, want_mask) << p.prompt();
    ++checked;
  }
  EXPECT_EQ(checked, 20);
}

TEST(SftTrainer, LearningRateWarmupAndCosine) {
  SftOptions o;
  o.steps = 110;
  o.lr = 1e-3;
  o.min_lr = 1e-4;
  o.warmup_steps = 10;
  EXPECT_DOUBLE_EQ(sft_learning_rate(o, 0), 1e-4);
  EXPECT_DOUBLE_EQ(sft_learning_rate(o, 9), 1e-3);
  EXPECT_DOUBLE_EQ(sft_learning_rate(o, 10), 1e-3);
  EXPECT_NEAR(sft_learning_rate(o, 10 + 99 / 2.0), 5.5e-4, 1e-5);  // halfway: the mean of lr and min_lr
  EXPECT_DOUBLE_EQ(sft_learning_rate(o, 109), 1e-4);
}

TEST(SftTrainer, LossFallsOnTheTinyTask) {
  const std::string dir = small_model("loss");
  ModelConfig cfg;
  Transformer model = load_model(dir, &cfg, torch::kCPU, torch::kFloat32);
  const Tokenizer tok = Tokenizer::from_file(dir);
  const int64_t eos = cfg.eos_token_ids.at(0);
  SftOptions o;
  o.steps = 60;
  o.batch_size = 32;
  o.micro_batch_size = 16;  // exercises gradient accumulation
  o.lr = 3e-3;
  o.min_lr = 3e-4;
  o.warmup_steps = 5;
  o.checkpoint_every = 0;
  o.log_every = 0;
  torch::manual_seed(0);
  const SftRunResult r = run_sft(model, tiny_source(tok, eos), o, fresh_dir("loss_run"), eos);
  std::printf("tiny-task SFT: loss %.3f -> %.3f in %d steps (%.1f s)\n", r.first_loss, r.last_loss, int(o.steps), r.seconds);
  EXPECT_GT(r.first_loss, 3.0);             // ~ln(vocab) at init
  EXPECT_LT(r.last_loss, 0.5 * r.first_loss);
  // Held-out loss (fresh examples) falls too, and agrees with the training-step loss.
  const auto batch = collate_sft(tiny_source(tok, eos)(100000, 64), eos);
  EXPECT_LT(sft_eval_loss(model, batch), 0.6 * r.first_loss);
}

TEST(SftTrainer, ResumeAfterInterruptionMatchesACleanRun) {
  SftOptions o;
  o.steps = 6;
  o.batch_size = 8;
  o.lr = 2e-3;
  o.warmup_steps = 2;
  o.checkpoint_every = 2;
  o.log_every = 0;
  const std::string dir = small_model("resume");
  const Tokenizer tok = Tokenizer::from_file(dir);
  ModelConfig cfg;

  // Clean run.
  Transformer clean = load_model(dir, &cfg, torch::kCPU, torch::kFloat32);
  const int64_t eos = cfg.eos_token_ids.at(0);
  run_sft(clean, tiny_source(tok, eos), o, fresh_dir("resume_clean"), eos);

  // Interrupted in step 6 (after the step-4 checkpoint; step 5 logged), then resumed by a fresh process-like call.
  const std::string out = fresh_dir("resume_run");
  Transformer first = load_model(dir, &cfg, torch::kCPU, torch::kFloat32);
  EXPECT_THROW(run_sft(first, tiny_source(tok, eos, /*fail_at_step=*/5), o, out, eos, dir), std::runtime_error);
  ASSERT_TRUE(fs::exists(out + "/checkpoint/state.json"));
  Transformer resumed = load_model(dir, &cfg, torch::kCPU, torch::kFloat32);
  const SftRunResult r = run_sft(resumed, tiny_source(tok, eos), o, out, eos, dir);
  EXPECT_EQ(r.resumed_from, 4);

  std::vector<int64_t> steps;
  for_each_jsonl(out + "/metrics.jsonl", [&](const json& rec, int) { steps.push_back(rec.at("step")); });
  EXPECT_EQ(steps, (std::vector<int64_t>{1, 2, 3, 4, 5, 6}));  // no gaps, no repeats
  const auto a = hf_state_dict(clean), b = hf_state_dict(resumed);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::allclose(a[i].second, b[i].second, 1e-5, 1e-6)) << a[i].first;
}

// Micro-batches on threads (SftOptions::parallel_micro_batches): the gradients of one micro-batch equal
// the .grad that backward() accumulates, and whole runs match the sequential run (float sums in another
// order) and repeat bit for bit.
TEST(SftTrainer, ParallelMicroBatchesMatchSequentialAndRepeatExactly) {
  const std::string dir = small_model("parallel");
  const Tokenizer tok = Tokenizer::from_file(dir);
  ModelConfig cfg;
  Transformer model = load_model(dir, &cfg, torch::kCPU, torch::kFloat32);
  const int64_t eos = cfg.eos_token_ids.at(0);
  ASSERT_TRUE(cfg.tie_word_embeddings);  // lm_head's gradient reaches the embedding from both ends

  // One micro-batch: sft_loss_grads == sft_loss_backward's .grad.
  const auto batch = collate_sft(tiny_source(tok, eos)(7, 8), eos);
  const std::vector<torch::Tensor> params = model->parameters();
  for (const auto& p : params) p.mutable_grad() = torch::Tensor();
  const double loss_a = sft_loss_backward(model, batch, 50.0, /*loss_chunk=*/5);
  std::vector<torch::Tensor> grads(params.size());
  const double loss_b = sft_loss_grads(model, batch, 50.0, /*loss_chunk=*/5, params, grads);
  EXPECT_DOUBLE_EQ(loss_a, loss_b);
  double max_diff = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    ASSERT_TRUE(grads[i].defined()) << i;
    max_diff = std::max(max_diff, (grads[i] - params[i].grad()).abs().max().item<double>());
  }
  std::printf("sft_loss_grads vs backward(): max |diff| %.3g over %zu tensors\n", max_diff, params.size());
  EXPECT_LT(max_diff, 1e-7);

  // Whole runs: 4 micro-batches of 4, sequential vs 2 and 3 at a time.
  SftOptions o;
  o.steps = 5;
  o.batch_size = 16;
  o.micro_batch_size = 4;
  o.lr = 2e-3;
  o.warmup_steps = 1;
  o.checkpoint_every = 0;
  o.log_every = 0;
  auto run = [&](int64_t parallel, const std::string& name) {
    o.parallel_micro_batches = parallel;
    Transformer m = load_model(dir, &cfg, torch::kCPU, torch::kFloat32);
    const std::string out = fresh_dir(name);
    run_sft(m, tiny_source(tok, eos), o, out, eos);
    std::vector<double> losses;
    for_each_jsonl(out + "/metrics.jsonl", [&](const json& rec, int) { losses.push_back(rec.at("loss")); });
    return std::make_pair(hf_state_dict(m), losses);
  };
  const auto seq = run(1, "parallel_seq"), two = run(2, "parallel_two"), two_again = run(2, "parallel_two_again"),
             three = run(3, "parallel_three");
  double param_diff = 0, loss_diff = 0;
  for (const auto* other : {&two, &three}) {
    ASSERT_EQ(other->second.size(), seq.second.size());
    for (size_t s = 0; s < seq.second.size(); ++s) loss_diff = std::max(loss_diff, std::abs(other->second[s] - seq.second[s]));
    for (size_t i = 0; i < seq.first.size(); ++i)
      param_diff = std::max(param_diff, (other->first[i].second - seq.first[i].second).abs().max().item<double>());
  }
  std::printf("5 steps, 2 and 3 micro-batches at a time vs sequential: loss diff %.3g, parameter diff %.3g\n", loss_diff,
              param_diff);
  EXPECT_LT(loss_diff, 1e-5);
  EXPECT_LT(param_diff, 1e-5);
  EXPECT_EQ(two.second, two_again.second);
  for (size_t i = 0; i < two.first.size(); ++i)
    EXPECT_TRUE(torch::equal(two.first[i].second, two_again.first[i].second)) << two.first[i].first;
}

// A bf16 model at lr 1e-6 trains through fp32 master weights: weights move (pure bf16 would round
// every update of a weight above 2^-11 away), and the masters travel in the checkpoint, so an
// interrupted run resumes onto exactly the clean run's masters and weights.
TEST(SftTrainer, Bf16MasterWeightsTrainAtLr1e6AndResumeExactly) {
  SftOptions o;
  o.steps = 6;
  o.batch_size = 8;
  o.lr = 1e-6;
  o.min_lr = 1e-6;
  o.warmup_steps = 0;
  o.checkpoint_every = 2;
  o.log_every = 0;
  const std::string dir = small_model("bf16");
  const Tokenizer tok = Tokenizer::from_file(dir);
  ModelConfig cfg;
  Transformer init = load_model(dir, &cfg, torch::kCPU, torch::kBFloat16);
  const int64_t eos = cfg.eos_token_ids.at(0);

  Transformer clean = load_model(dir, &cfg, torch::kCPU, torch::kBFloat16);
  run_sft(clean, tiny_source(tok, eos), o, fresh_dir("bf16_clean"), eos);
  const std::string out = fresh_dir("bf16_run");
  Transformer first = load_model(dir, &cfg, torch::kCPU, torch::kBFloat16);
  EXPECT_THROW(run_sft(first, tiny_source(tok, eos, /*fail_at_step=*/5), o, out, eos, dir), std::runtime_error);
  // The step-4 checkpoint holds fp32 masters that differ from its bf16 weights.
  Transformer ckpt = load_model(out + "/checkpoint/model", nullptr, torch::kCPU, torch::kBFloat16);
  MasterWeights saved(ckpt->parameters(), torch::optim::AdamWOptions(1e-6));
  saved.load_from_file(out + "/checkpoint/optimizer.pt", torch::kCPU);
  ASSERT_TRUE(saved.enabled());
  EXPECT_FALSE(torch::equal(saved.masters()[0], saved.masters()[0].to(torch::kBFloat16).to(torch::kFloat32)));
  Transformer resumed = load_model(dir, &cfg, torch::kCPU, torch::kBFloat16);
  EXPECT_EQ(run_sft(resumed, tiny_source(tok, eos), o, out, eos, dir).resumed_from, 4);

  int64_t changed = 0, total = 0, differ = 0;
  const auto p0 = init->parameters(), pc = clean->parameters(), pr = resumed->parameters();
  for (size_t i = 0; i < p0.size(); ++i) {
    total += p0[i].numel();
    changed += (p0[i].ne(pc[i]) & (p0[i].to(torch::kFloat32).abs() > 1.0 / 2048)).sum().item<int64_t>();
    differ += pc[i].ne(pr[i]).sum().item<int64_t>();
  }
  std::printf("  bf16 SFT, 6 steps at lr 1e-6: %lld of %lld weights above 2^-11 changed; resumed vs clean: %lld differ\n",
              (long long)changed, (long long)total, (long long)differ);
  EXPECT_GT(changed, total / 200);
  EXPECT_EQ(differ, 0);
}

}  // namespace
}  // namespace r1kit::sft
