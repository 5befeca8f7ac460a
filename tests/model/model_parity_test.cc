// Reproduces ../shared/fixtures/tiny-{qwen2,llama}/expected.json (an independent float32 PyTorch
// reference of the HF modeling code): logits, sums, argmax, log-probs, greedy continuation, and
// the bf16 checkpoint. Prints the max difference per quantity, like llm.c's test_gpt2.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/fs.h"
#include "core/safetensors.h"
#include "core/json.h"
#include "model/checkpoint.h"
#include "model/generate.h"
#include "tests/model/model_test_util.h"

using namespace r1kit;
using namespace r1kit::test;

namespace {

struct Tolerances {
  double logits_abs = 2e-4, logprobs_abs = 2e-4, logits_sum_abs = 2e-2, logits_sum_sq_rel = 1e-5, row_sums_abs = 2e-3;
};

class FixtureParity : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = shared_path("fixtures/" + GetParam());
    R1_REQUIRE_FILE(dir_ + "/expected.json");
    expected_ = parse_json(read_file(dir_ + "/expected.json"), dir_ + "/expected.json");
    const json& t = expected_["suggested_tolerances"];
    tol_ = {t["logits_abs"], t["logprobs_abs"], t["logits_sum_abs"], t["logits_sum_sq_rel"], t["row_sums_abs"]};
    torch::manual_seed(0);
  }

  static torch::Tensor ids_tensor(const std::vector<int64_t>& ids) {
    return torch::tensor(ids, torch::kLong).view({1, int64_t(ids.size())});
  }
  static torch::Tensor positions(int64_t n) { return torch::arange(n, torch::kLong).view({1, n}); }

  // logits [T,V] f32 of the full (no-cache) forward.
  static torch::Tensor full_logits(Transformer& model, const std::vector<int64_t>& ids) {
    torch::NoGradGuard g;
    return model->forward(ids_tensor(ids), positions(int64_t(ids.size()))).select(0, 0);
  }

  static torch::Tensor to_tensor(const json& values) {  // nested JSON numbers -> f64 tensor
    std::vector<double> flat;
    std::vector<int64_t> shape;
    if (values[0].is_array()) {
      shape = {int64_t(values.size()), int64_t(values[0].size())};
      for (const auto& row : values)
        for (const auto& v : row) flat.push_back(v.get<double>());
    } else {
      shape = {int64_t(values.size())};
      for (const auto& v : values) flat.push_back(v.get<double>());
    }
    return torch::tensor(flat, torch::kFloat64).view(shape);
  }
  // Logit values are the shortest decimals of float32 numbers: parse them back into float32.
  static torch::Tensor to_f32_values(const json& values) {
    return to_tensor(values).to(torch::kFloat32).to(torch::kFloat64);
  }

  std::string dir_;
  json expected_;
  Tolerances tol_;
};

TEST_P(FixtureParity, LogitsLogprobsAndSums) {
  ModelConfig cfg;
  Transformer model = load_model(dir_, &cfg, torch::kCPU, torch::kFloat32);
  EXPECT_EQ(cfg.model_type, expected_["model_type"].get<std::string>());
  EXPECT_EQ(cfg.architecture, expected_["architecture"].get<std::string>());
  for (const json& seq : expected_["sequences"]) {
    const std::string name = seq["name"];
    SCOPED_TRACE(GetParam() + " " + name);
    const auto ids = seq["input_ids"].get<std::vector<int64_t>>();
    const int64_t T = int64_t(ids.size());
    auto logits = full_logits(model, ids).to(torch::kFloat64);  // [T,V]
    ASSERT_EQ(logits.size(0), T);
    ASSERT_EQ(logits.size(1), cfg.vocab_size);

    if (seq.contains("logits")) {
      const double d = max_abs_diff(logits, to_f32_values(seq["logits"]));
      std::printf("[%s %s] logits max|diff| %.3g\n", GetParam().c_str(), name.c_str(), d);
      EXPECT_LE(d, tol_.logits_abs);
    }
    const double d_last = max_abs_diff(logits[T - 1], to_f32_values(seq["last_logits"]));
    const double d_sum = std::abs(logits.sum().item<double>() - seq["logits_sum"].get<double>());
    const double sum_sq = seq["logits_sum_sq"].get<double>();
    const double d_sq = std::abs(logits.pow(2).sum().item<double>() - sum_sq) / sum_sq;
    const double d_rows = max_abs_diff(logits.sum(1), to_tensor(seq["row_sums"]));
    auto argmax = logits.argmax(1);
    const auto want_argmax = seq["argmax"].get<std::vector<int64_t>>();
    int64_t argmax_mismatch = 0;
    for (int64_t t = 0; t < T; ++t) argmax_mismatch += argmax[t].item<int64_t>() != want_argmax[t];
    double d_lp = 0;
    if (T > 1) {
      auto lp = torch::log_softmax(logits.narrow(0, 0, T - 1), 1)
                    .gather(1, ids_tensor(ids).view({T, 1}).narrow(0, 1, T - 1))
                    .view({T - 1});
      d_lp = max_abs_diff(lp, to_tensor(seq["logprobs"]));
      EXPECT_NEAR(lp.sum().item<double>(), seq["logprob_total"].get<double>(), tol_.logprobs_abs * T);
    }
    std::printf("[%s %s] last_logits %.3g  logits_sum %.3g  logits_sum_sq(rel) %.3g  row_sums %.3g  logprobs %.3g  "
                "argmax mismatches %lld\n",
                GetParam().c_str(), name.c_str(), d_last, d_sum, d_sq, d_rows, d_lp, (long long)argmax_mismatch);
    EXPECT_LE(d_last, tol_.logits_abs);
    EXPECT_LE(d_sum, tol_.logits_sum_abs);
    EXPECT_LE(d_sq, tol_.logits_sum_sq_rel);
    EXPECT_LE(d_rows, tol_.row_sums_abs);
    EXPECT_LE(d_lp, tol_.logprobs_abs);
    EXPECT_EQ(argmax_mismatch, 0);
  }
}

TEST_P(FixtureParity, GreedyWithCacheAndWithFullRecompute) {
  Transformer model = load_model(dir_, nullptr, torch::kCPU, torch::kFloat32);
  const json& g = expected_["greedy"];
  const auto prompt = g["prompt_ids"].get<std::vector<int64_t>>();
  const auto want = g["new_tokens"].get<std::vector<int64_t>>();
  GenerateOptions opts;
  opts.max_new_tokens = g["num_new_tokens"];
  EXPECT_EQ(generate_tokens(model, prompt, opts), want);  // KV cache, never stops early (no stop ids)

  std::vector<int64_t> seq = prompt, recomputed;
  for (size_t i = 0; i < want.size(); ++i) {
    auto logits = full_logits(model, seq);
    recomputed.push_back(logits[-1].argmax().item<int64_t>());
    seq.push_back(recomputed.back());
  }
  EXPECT_EQ(recomputed, want);
}

TEST_P(FixtureParity, Bf16Checkpoint) {
  const json& b = expected_["bf16"];
  const std::string src = dir_ + "/" + b["weights_file"].get<std::string>();
  R1_REQUIRE_FILE(src);
  const std::string dir = fresh_dir("bf16_" + GetParam());
  std::filesystem::copy_file(dir_ + "/config.json", dir + "/config.json");
  std::filesystem::copy_file(src, dir + "/model.safetensors");
  SafetensorsFile file(dir + "/model.safetensors");
  for (const auto& [name, info] : file.tensors()) EXPECT_EQ(info.dtype, "BF16") << name;

  // The reference upcasts the bf16 weights and runs the float32 model.
  Transformer model = load_model(dir, nullptr, torch::kCPU, torch::kFloat32);
  const auto ids = b["input_ids"].get<std::vector<int64_t>>();
  auto logits = full_logits(model, ids).to(torch::kFloat64);
  const double d = max_abs_diff(logits, to_f32_values(b["logits"]));
  const double d_sum = std::abs(logits.sum().item<double>() - b["logits_sum"].get<double>());
  const double d_sq = std::abs(logits.pow(2).sum().item<double>() - b["logits_sum_sq"].get<double>()) /
                      b["logits_sum_sq"].get<double>();
  auto argmax = logits.argmax(1);
  EXPECT_EQ(std::vector<int64_t>(argmax.data_ptr<int64_t>(), argmax.data_ptr<int64_t>() + argmax.numel()),
            b["argmax"].get<std::vector<int64_t>>());

  const json* len100 = nullptr;
  for (const json& s : expected_["sequences"])
    if (s["name"] == "len100") len100 = &s;
  ASSERT_NE(len100, nullptr);
  auto l100 = full_logits(model, (*len100)["input_ids"].get<std::vector<int64_t>>()).to(torch::kFloat64);
  const double d100_sum = std::abs(l100.sum().item<double>() - b["len100_logits_sum"].get<double>());
  const double d100_sq = std::abs(l100.pow(2).sum().item<double>() - b["len100_logits_sum_sq"].get<double>()) /
                         b["len100_logits_sum_sq"].get<double>();
  auto a100 = l100.argmax(1);
  EXPECT_EQ(std::vector<int64_t>(a100.data_ptr<int64_t>(), a100.data_ptr<int64_t>() + a100.numel()),
            b["len100_argmax"].get<std::vector<int64_t>>());
  std::printf("[%s bf16] logits %.3g  logits_sum %.3g  logits_sum_sq(rel) %.3g  len100 sum %.3g  len100 sum_sq(rel) "
              "%.3g\n",
              GetParam().c_str(), d, d_sum, d_sq, d100_sum, d100_sq);
  EXPECT_LE(d, tol_.logits_abs);
  EXPECT_LE(d_sum, tol_.logits_sum_abs);
  EXPECT_LE(d_sq, tol_.logits_sum_sq_rel);
  EXPECT_LE(d100_sum, tol_.logits_sum_abs);
  EXPECT_LE(d100_sq, tol_.logits_sum_sq_rel);

  // bf16 compute (the CUDA default) stays close to the reference: bf16 activations cost ~1e-2.
  Transformer bf16 = load_model(dir, nullptr, torch::kCPU, torch::kBFloat16);
  EXPECT_EQ(bf16->dtype(), torch::kBFloat16);
  const double d_bf16 = max_abs_diff(full_logits(bf16, ids).to(torch::kFloat64), to_f32_values(b["logits"]));
  std::printf("[%s bf16 compute] logits max|diff| %.3g\n", GetParam().c_str(), d_bf16);
  EXPECT_LE(d_bf16, 0.5);
}

// Cached decoding reproduces the fixture's full-forward logits: prefill in uneven chunks, then
// token by token.
TEST_P(FixtureParity, KvCacheDecodeMatchesReference) {
  ModelConfig cfg;
  Transformer model = load_model(dir_, &cfg, torch::kCPU, torch::kFloat32);
  torch::NoGradGuard g;
  for (const json& seq : expected_["sequences"]) {
    if (seq["name"] != "len33" && seq["name"] != "len7") continue;
    const auto ids = seq["input_ids"].get<std::vector<int64_t>>();
    const int64_t T = int64_t(ids.size());
    KvCache cache(cfg, 1, T, torch::kFloat32, torch::kCPU);
    std::vector<torch::Tensor> rows;
    int64_t done = 0;
    for (int64_t chunk : {3, 1, 2}) {
      chunk = std::min(chunk, T - done);
      auto part = ids_tensor(std::vector<int64_t>(ids.begin() + done, ids.begin() + done + chunk));
      rows.push_back(model->forward(part, positions(chunk) + done, &cache).select(0, 0));
      done += chunk;
    }
    while (done < T) {
      rows.push_back(model->forward(ids_tensor({ids[done]}), positions(1) + done, &cache).select(0, 0));
      ++done;
    }
    EXPECT_EQ(cache.length(0), T);
    auto logits = torch::cat(rows, 0).to(torch::kFloat64);
    const double d_last = max_abs_diff(logits[T - 1], to_f32_values(seq["last_logits"]));
    const double d_rows = max_abs_diff(logits.sum(1), to_tensor(seq["row_sums"]));
    std::printf("[%s %s kv-cache] last_logits %.3g  row_sums %.3g\n", GetParam().c_str(),
                seq["name"].get<std::string>().c_str(), d_last, d_rows);
    EXPECT_LE(d_last, tol_.logits_abs);
    EXPECT_LE(d_rows, tol_.row_sums_abs);
    if (seq.contains("logits")) {
      EXPECT_LE(max_abs_diff(logits, to_f32_values(seq["logits"])), tol_.logits_abs);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, FixtureParity, testing::Values("tiny-qwen2", "tiny-llama"),
                         [](const testing::TestParamInfo<std::string>& i) {
                           return i.param == "tiny-qwen2" ? std::string("qwen2") : std::string("llama");
                         });

}  // namespace
