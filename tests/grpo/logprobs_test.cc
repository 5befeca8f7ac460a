// Chunked completion log-probs against (a) the unchunked [B, T, V] computation on the tiny
// fixture models, at several temperatures and chunk sizes, with and without grad, and (b) the
// fixture's independent expected log-probs at temperature 1.
#include "grpo/logprobs.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/check.h"
#include "core/fs.h"
#include "core/json.h"
#include "model/checkpoint.h"
#include "tests/test_util.h"

namespace r1kit::grpo {
namespace {

std::vector<int64_t> ids_of(const json& seq) { return seq.at("input_ids").get<std::vector<int64_t>>(); }

// Reference: full logits, full log_softmax, gather; the thing chunking must reproduce.
CompletionLogprobs unchunked(Transformer& model, const CompletionBatch& b, double temperature) {
  torch::Tensor logits = model->forward(b.input_ids, b.positions).to(torch::kFloat32) / temperature;  // [B,T,V]
  torch::Tensor logsm = torch::log_softmax(logits, -1);
  const int64_t B = b.input_ids.size(0), C = b.completion_ids.size(1);
  CompletionLogprobs out;
  out.logprobs = torch::zeros({B, C});
  out.entropy = torch::zeros({B, C});
  std::vector<torch::Tensor> rows_lp, rows_ent;
  for (int64_t i = 0; i < B; ++i) {
    for (int64_t j = 0; j < b.completion_lengths[i]; ++j) {
      int64_t pos = b.prompt_lengths[i] + j - 1;
      out.logprobs = out.logprobs.index_put({torch::tensor(i), torch::tensor(j)},
                                            logsm[i][pos][b.completion_ids[i][j].item<int64_t>()]);
      out.entropy[i][j] = -(logsm[i][pos].exp() * logsm[i][pos]).sum().detach();
    }
  }
  return out;
}

class LogprobsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(LogprobsTest, ChunkedEqualsUnchunkedAndFixture) {
  const std::string dir = test::shared_path("fixtures/" + GetParam());
  R1_REQUIRE_FILE(dir + "/expected.json");
  Transformer model = load_model(dir, nullptr, torch::kCPU, torch::kFloat32);
  json expected = parse_json(read_file(dir + "/expected.json"), dir + "/expected.json");
  std::map<std::string, std::vector<int64_t>> seqs;
  std::map<std::string, std::vector<double>> want;
  for (const json& s : expected.at("sequences")) {
    seqs[s.at("name")] = ids_of(s);
    want[s.at("name")] = s.at("logprobs").get<std::vector<double>>();
  }
  // Rows of different prompt and completion lengths, right-padded in one batch:
  // len33 split 5 + 28, len7 split 1 + 6, len100 split 60 + 40, and len7 with an empty completion.
  auto split = [&](const std::string& name, size_t p) {
    const auto& v = seqs.at(name);
    return std::make_pair(std::vector<int64_t>(v.begin(), v.begin() + p), std::vector<int64_t>(v.begin() + p, v.end()));
  };
  std::vector<std::pair<std::string, size_t>> rows = {{"len33", 5}, {"len7", 1}, {"len100", 60}, {"len7", 7}};
  std::vector<std::vector<int64_t>> prompts, comps;
  for (auto& [name, p] : rows) {
    auto [a, b] = split(name, p);
    prompts.push_back(a);
    comps.push_back(b);
  }
  CompletionBatch batch = make_completion_batch(prompts, comps);
  ASSERT_EQ(batch.completion_ids.size(1), 40);

  // (b) temperature 1 against the independent reference, 2e-4 (the fixture's suggested logprobs_abs).
  {
    torch::NoGradGuard ng;
    LogprobOptions o;
    o.chunk_size = 7;
    CompletionLogprobs got = completion_logprobs(model, batch, o);
    double worst = 0;
    for (size_t r = 0; r < rows.size(); ++r) {
      const auto& w = want.at(rows[r].first);
      for (int64_t j = 0; j < batch.completion_lengths[r]; ++j) {
        double d = std::fabs(got.logprobs[r][j].item<double>() - w[rows[r].second - 1 + j]);
        worst = std::max(worst, d);
      }
    }
    std::printf("%s: max |logprob - fixture| = %.3e\n", GetParam().c_str(), worst);
    EXPECT_LT(worst, 2e-4);
    EXPECT_EQ(got.logprobs.masked_select(~batch.completion_mask).abs().sum().item<double>(), 0.0);
  }

  // (a) chunked == unchunked, values, entropy and parameter gradients.
  for (double temperature : {1.0, 0.7}) {
    model->zero_grad();
    CompletionLogprobs ref = unchunked(model, batch, temperature);
    (ref.logprobs * batch.completion_mask).sum().backward();
    std::vector<torch::Tensor> ref_grads;
    for (auto& p : model->parameters()) ref_grads.push_back(p.grad().clone());
    for (int64_t chunk : {1, 13, 4096}) {
      model->zero_grad();
      LogprobOptions o;
      o.temperature = temperature;
      o.chunk_size = chunk;
      o.entropy = true;
      CompletionLogprobs got = completion_logprobs(model, batch, o);
      EXPECT_LT((got.logprobs - ref.logprobs).abs().max().item<double>(), 1e-5) << "chunk " << chunk;
      EXPECT_LT((got.entropy - ref.entropy).abs().max().item<double>(), 1e-4) << "chunk " << chunk;
      got.logprobs.sum().backward();
      auto params = model->parameters();
      for (size_t k = 0; k < params.size(); ++k) {
        double scale = std::max(1.0, ref_grads[k].abs().max().item<double>());
        EXPECT_LT((params[k].grad() - ref_grads[k]).abs().max().item<double>(), 1e-4 * scale)
            << "chunk " << chunk << " param " << k;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(TinyModels, LogprobsTest, ::testing::Values("tiny-qwen2", "tiny-llama"));

TEST(Logprobs, EmptyBatchAndBadInput) {
  EXPECT_THROW(make_completion_batch({{}}, {{1}}), Error);
  EXPECT_THROW(make_completion_batch({{1}}, {}), Error);
}

}  // namespace
}  // namespace r1kit::grpo
